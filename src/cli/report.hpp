// The one place where the commands' findings become output: every text line,
// every JSON envelope (always with "version"), every stderr message and every
// exit code of conda-sign and conda-guard. Subcommands build the structured
// data below (or the library's own: Result, ChannelReport, SubdirReport) and
// hand it to a Reporter; nothing else in src/ writes to stdout.
//
// The module is report.hpp with two sources: report.cpp (everything
// conda-sign needs too) and report_channel.cpp (channel and index reports,
// linked into conda-guard only, so that conda-sign does not link the channel
// library).
//
// Text output rules:
//  - Every string that came from outside (file names, key names, reasons,
//    channel ids) is passed through escape_text(): control characters, DEL,
//    backslash and bytes that are not UTF-8 are shown as \n, \t, \\, \x1b...,
//    so one finding is always one line and a name cannot forge another line
//    or move the cursor. JSON escapes by itself (invalid UTF-8 is replaced).
//  - Finding lines are PATH  VERDICT  reason; the path column is as wide as the
//    longest path printed by that command, the verdict column as wide as the
//    longest verdict word (UNTRUSTED_KEY), two spaces apart.
//  - A fingerprint is shown as its first 16 hex digits; -v/--verbose (and
//    JSON, always) show all 64.
#pragma once

#include <condaguard/trust/verdict.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {
struct AuditReport;    // audit/audit.hpp
struct AuditProgress;  // audit/audit.hpp
struct ChannelReport;  // channel/verify.hpp
struct GateReport;     // install/gate.hpp
struct GateProgress;   // install/gate.hpp
struct SubdirReport;   // channel/publish.hpp
struct Policy;         // config/policy.hpp
}  // namespace condaguard

namespace condaguard::cli {

struct CondaPython;      // plugin_setup.hpp
struct PluginInstalled;  // plugin_setup.hpp
struct PluginRemoved;    // plugin_setup.hpp
struct PluginStatus;     // plugin_setup.hpp

// JSON output format version; bump on incompatible changes.
inline constexpr int json_version = 1;

// Hex digits of a fingerprint shown in plain text.
inline constexpr std::size_t short_fingerprint_digits = 16;

// `s` made safe for one line of a terminal: see the rules above.
std::string escape_text(std::string_view s);

// 0 when all are VALID, 2 when any is ERROR, else 1. An empty list is 0.
int exit_status(const std::vector<Result>& results);

// {"path", "verdict", "reason", "key", "fingerprint"}: key and fingerprint null when unset.
nlohmann::json to_json(const Result& r);

// "ok" for exit status 0, "fail" for 1, "error" for 2.
std::string_view status_word(int exit_status);

// One key as `keys list` and `keys show` describe it.
struct KeyInfo {
    std::string name;
    std::filesystem::path public_key;
    bool has_private_key = false;
    Verdict verdict = Verdict::Error;  // VALID, or why the key is unusable
    std::string reason;                // when not VALID
    std::string type;                  // rsa, ed25519 (when VALID)
    unsigned bits = 0;
    std::string fingerprint;
    std::string pem;  // keys show only
};

// A key pair conda-sign --keygen or --import-key wrote.
struct StoredKey {
    std::string name;
    std::string type;
    unsigned bits = 0;
    std::filesystem::path private_key;
    std::filesystem::path public_key;
    std::string fingerprint;
};

// What conda-sign did with one file to sign.
struct SignOutcome {
    std::string path;
    std::optional<std::filesystem::path> sig;  // set when written
    std::string error;                         // set when not
};

struct SignReport {
    std::string key;
    std::string fingerprint;
    std::vector<SignOutcome> files;
};

// The key an index run signed with (for its summary line).
struct IndexSigner {
    std::string key;
    std::string fingerprint;
};

// conda-guard gate's answer to the conda plugin (report_gate.cpp).
struct GatePackage {
    std::string fn;
    Result result;                      // path: the package URL without credentials
    std::optional<std::string> folder;  // the folder placed or proven, when VALID or UNVERIFIED and not a dry run
    std::optional<std::string> unverified_by;  // UNVERIFIED: the policy rule allowing its channel unsigned
    std::vector<std::string> cleaned;   // claimants moved out of a package directory (GateReport::cleaned)
};

struct GateAnswer {
    bool dry_run = false;
    std::vector<Result> indexes;
    std::vector<GatePackage> packages;  // in the order of the request's records
};

class Reporter {
public:
    explicit Reporter(const char* prog) : prog_(prog) {}
    const char* prog() const noexcept { return prog_; }

    bool json = false;     // --json: one JSON document on stdout
    bool verbose = false;  // -v/--verbose: full fingerprints in text

    // Standard error, one line each, escaped: "PROG: warning: MESSAGE",
    // "PROG: MESSAGE".
    void warning(std::string_view message) const;
    void notice(std::string_view message) const;

    // A command line CLI11 refused (exit 2): the message and a hint.
    int usage_error(std::string_view message) const;
    // A command that stopped: "PROG: error: MESSAGE", and with --json an
    // error envelope on stdout. Returns `status`.
    int error(int status, std::string_view message) const;

    // verify, conda-sign --verify: one line per file.
    int results(std::string_view command, const std::vector<Result>& results) const;

    // verify-channel: per subdir, the index's finding then its packages'.
    // (report_channel.cpp)
    int channel(const ChannelReport& report) const;

    // index: one summary line per subdir, the packages left out on stderr;
    // exits 1 when any package was left out. (report_channel.cpp)
    int index(const std::vector<SubdirReport>& subdirs, const std::optional<IndexSigner>& signer) const;

    // fetch: the indexes' findings, then one line per package, one line
    // "cleaned PATH (claimed NAME-VERSION-BUILD)" per folder removed, then a
    // summary line; with --json each package also has "cleaned". Exit
    // status and "status" as exit_status's, except that UNVERIFIED (only the
    // gate's, by policy) counts as passing here and in gate_answer.
    // (report_gate.cpp)
    int gate(const GateReport& report) const;

    // gate: always one JSON document on stdout, whatever --json says
    // (report_gate.cpp):
    //   {"version": 1, "command": "gate", "status": ok|fail|error, "dry_run",
    //    "indexes": [RESULT...],
    //    "packages": [{"fn", "url", "verdict", "reason", "key", "fingerprint", "placed", "cleaned"}...]}
    // where RESULT is to_json's, "placed" is the folder or null, and
    // "cleaned" the list (maybe empty) of folders that claimed the package
    // and were removed from a package directory.
    // An UNVERIFIED package also has "unsigned_channel": the policy rule
    // (its match) that allows its channel unsigned.
    int gate_answer(const GateAnswer& answer) const;
    // gate, stopped before any verdict (bad request, unusable package
    // directory): "PROG: error: MESSAGE" on stderr and
    //   {"version": 1, "command": "gate", "status": "error", "message": MESSAGE}
    // on stdout. Returns 2.
    int gate_stopped(std::string_view message) const;

    // plugin install: where the plugin went, and whether the plugin finds
    // this conda-guard (else the exact `conda config --set
    // plugins.condaguard_bin_dir DIR` to run; nothing is configured).
    // (report_plugin.cpp)
    //   {"version": 1, "command": "plugin install", "status": "ok",
    //    "conda": {"conda", "python", "found_by", "purelib", "prefix"},
    //    "package", "dist_info", "files", "replaced",
    //    "bin_dir": {"dir", "beside_python", "hint" (null when beside)}}
    int plugin_installed(const CondaPython& python, const PluginInstalled& done) const;
    // plugin uninstall: each folder removed ("removed": [...], empty when
    // nothing was installed). (report_plugin.cpp)
    int plugin_removed(const CondaPython& python, const PluginRemoved& done) const;
    // plugin status: 0 loaded, 1 not installed or stale (with why).
    //   {..., "command": "plugin status", "conda": {...}, "state":
    //    loaded|not-installed|stale, "expected_version", "installed_version",
    //    "module_file", "entry_points", "problems"} (report_plugin.cpp)
    int plugin_status(const CondaPython& python, const PluginStatus& status, std::string_view version) const;

    // audit: per package its record's line (PATH  VERDICT  reason), then one
    // line per file with a finding, rpm -V style ("S5MLR" flags, '.' where a
    // check passed; "missing"; "untracked"), then a summary line. Exit 0
    // when every package is VALID and no file has a finding, 2 when any
    // package is ERROR or the walk stopped, else 1. (report_audit.cpp)
    //   {"version": 1, "command": "audit", "status", "prefix",
    //    "packages": [{RESULT..., "fn", "tarball", "files_authenticated",
    //                  "files_checked", "files": [{"path", "flags", "reason"}...]}...],
    //    "untracked": [{"path", "flags", "reason"}...], "walk_error",
    //    "summary": {"packages", "valid", "files_checked", "files_with_findings", "untracked", "bytes_hashed"}}
    // where "flags" is a list of words: size, digest, mode, link, missing, untracked, record.
    int audit(const std::filesystem::path& prefix, const AuditReport& report) const;
    // conda-sign --keygen, before the (slow) generation starts: text only.
    void generating_key() const;
    // conda-sign --keygen / --import-key: where the pair went.
    int key_stored(std::string_view command, const StoredKey& key) const;
    // conda-sign FILE...: exits 2 when any file could not be signed.
    int signed_files(const SignReport& report) const;

    // keys list: exit status is the worst key's verdict (a BAD_KEY is 1).
    int keys_list(const std::filesystem::path& dir, const std::vector<KeyInfo>& keys) const;
    int key_show(const KeyInfo& key) const;
    int keys_removed(const std::vector<std::filesystem::path>& removed) const;

    // policy: "key  value  source" lines in aligned columns, or JSON; warns
    // when the policy lowers the RSA floor. (report_policy.cpp)
    int policy(const Policy& policy) const;

    // state show (the StateStore's dump) and state reset.
    int state_show(const nlohmann::json& state) const;
    int state_reset(const std::string& channel) const;

private:
    // {"version": 1, "command": COMMAND, "status": ok|fail|error} plus `body`.
    void print_envelope(std::string_view command, int status, nlohmann::json body) const;
    // The fingerprint as text shows it: short unless --verbose.
    std::string fingerprint_text(std::string_view fingerprint) const;
    // Result lines with column widths computed from all of `results`.
    void print_result_lines(const std::vector<const Result*>& results, std::size_t path_width) const;
    // The reason with its fingerprint shortened unless --verbose, escaped.
    std::string reason_text(const Result& r) const;

    const char* prog_;
};

// A progress display: one line on standard error, redrawn in place, only
// when standard error is a terminal and the output is not JSON; cleared
// when done. show() for the gate's transfers is in report_gate.cpp, for the
// audit's hashing in report_audit.cpp.
class ProgressLine {
public:
    explicit ProgressLine(const Reporter& out);
    ~ProgressLine();
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;
    void show(const GateProgress& p);
    void show(const AuditProgress& p);

private:
    // Replaces the line with `text` (when enabled).
    void draw(std::string_view text);
    bool enabled_;
    bool shown_ = false;
    std::chrono::steady_clock::time_point start_;  // the first show(): for the gate's rate
};

// Display width of escape_text(s) (code points, not bytes).
std::size_t text_width(std::string_view s);

}  // namespace condaguard::cli
