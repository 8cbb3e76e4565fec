// conda-guard gate: the install gate as the conda plugin calls it. One JSON
// request on standard input (record URLs carry credentials: never on the
// command line), one JSON answer on standard output (Reporter::gate_answer),
// on the same fetch, verify and extract code as conda-guard fetch.
//
// The request (protocol version 1):
//   {"version": 1, "command": "install", "dry_run": false,
//    "pkgs_dirs": ["/opt/conda/pkgs", ...],
//    "records": [{"url": ..., "fn", "name", "version", "build", "subdir", "sha256", "md5", ...}]}
// version, pkgs_dirs and records are required; command (conda's, for the
// caller's own records) and dry_run are optional; any other top-level key is
// refused, so that a misspelt "dry_run" cannot turn into a real run. In a
// record only url is required; fn, name, version, build, subdir, sha256 and
// md5 are checked when present and not null; other keys (conda's size,
// channel, depends, ...) are ignored: the signed record decides.
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/text.hpp>
#include <condaguard/sys/url.hpp>

#include "gate_setup.hpp"
#include "guard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <unistd.h>

namespace condaguard::cli {

namespace {

// The largest request read (standard input); one byte more is refused.
constexpr std::size_t max_request_bytes = std::size_t{64} << 20;
constexpr int protocol_version = 1;

struct GateArgs {
    GateSetupOptions setup;
    unsigned jobs = 0;
};

// A request that cannot be served: the run stops before any verdict.
class RequestError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct GateRecord {
    std::string url;  // credentials kept: never print it unredacted
    std::optional<std::string> fn, name, version, build, subdir, sha256, md5;
};

struct GateRequest {
    bool dry_run = false;
    std::vector<std::filesystem::path> pkgs_dirs;
    std::vector<GateRecord> records;
};

// nlohmann's syntax message without its "; last read: '...'" part, which
// quotes the input (a URL with its credentials, maybe) and what follows it.
std::string syntax_without_input(const std::string& what) {
    const auto cut = what.find("; last read:");
    return cut == std::string::npos ? what : what.substr(0, cut);
}

nlohmann::json read_request_document(int fd) {
    if (::isatty(fd) == 1)
        throw RequestError("standard input is a terminal: the request is a JSON document on a pipe");
    try {
        return read_json(fd, {.max_bytes = max_request_bytes}, "standard input");
    } catch (const JsonError& e) {
        const std::string why = e.kind() == JsonError::Kind::Syntax ? syntax_without_input(e.what()) : e.what();
        throw RequestError(fmt::format("standard input: {}", why));
    }
}

// An optional string field: absent and null are none; anything else but a string is refused.
std::optional<std::string> optional_string(const nlohmann::json& obj, const char* key, const std::string& where) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) throw RequestError(fmt::format("{}.{} is not a string", where, key));
    return it->get<std::string>();
}

GateRequest parse_request(const nlohmann::json& doc) {
    if (!doc.is_object()) throw RequestError("the request is not a JSON object");
    static const std::set<std::string, std::less<>> known{"version", "command", "dry_run", "pkgs_dirs", "records"};
    for (const auto& [k, v] : doc.items())
        if (!known.contains(k)) throw RequestError(fmt::format("unknown key {} in the request", condaguard::quoted(k)));
    const auto version = doc.find("version");
    if (version == doc.end()) throw RequestError("the request has no version");
    if (!version->is_number_integer() || version->get<std::int64_t>() != protocol_version)
        throw RequestError(fmt::format("the request's version is {}; this conda-guard speaks version {}",
                                       version->dump(), protocol_version));
    GateRequest r;
    optional_string(doc, "command", "request");  // conda's command: checked for its type only
    if (const auto it = doc.find("dry_run"); it != doc.end()) {
        if (!it->is_boolean()) throw RequestError("dry_run is not true or false");
        r.dry_run = it->get<bool>();
    }
    const auto dirs = doc.find("pkgs_dirs");
    if (dirs == doc.end() || !dirs->is_array() || dirs->empty())
        throw RequestError("pkgs_dirs is not a non-empty list of package directories");
    for (std::size_t i = 0; i < dirs->size(); ++i) {
        const auto& d = (*dirs)[i];
        if (!d.is_string() || d.get<std::string>().empty())
            throw RequestError(fmt::format("pkgs_dirs[{}] is not a path", i));
        const std::filesystem::path p(d.get<std::string>());
        if (!p.is_absolute())
            throw RequestError(fmt::format("pkgs_dirs[{}] ({}) is not an absolute path", i, condaguard::quoted(p.string())));
        r.pkgs_dirs.push_back(p);
    }
    const auto records = doc.find("records");
    if (records == doc.end() || !records->is_array()) throw RequestError("records is not a list");
    for (std::size_t i = 0; i < records->size(); ++i) {
        const auto& rec = (*records)[i];
        const std::string where = fmt::format("records[{}]", i);
        if (!rec.is_object()) throw RequestError(where + " is not an object");
        const auto url = optional_string(rec, "url", where);
        if (!url) throw RequestError(where + " has no url");
        r.records.push_back(GateRecord{.url = *url,
                                       .fn = optional_string(rec, "fn", where),
                                       .name = optional_string(rec, "name", where),
                                       .version = optional_string(rec, "version", where),
                                       .build = optional_string(rec, "build", where),
                                       .subdir = optional_string(rec, "subdir", where),
                                       .sha256 = optional_string(rec, "sha256", where),
                                       .md5 = optional_string(rec, "md5", where)});
    }
    return r;
}

// The record's URL as a package; a URL that is not one stops the run, named
// without its credentials.
PackageUrl package_of(const GateRecord& rec, std::size_t i, const std::filesystem::path& cwd) {
    try {
        return parse_package_url(rec.url, cwd);
    } catch (const ExplicitError& e) {
        std::string why = e.what();
        const std::string raw = condaguard::quoted(rec.url), shown = condaguard::quoted(redact_url(rec.url));
        for (std::size_t pos = 0; (pos = why.find(raw, pos)) != std::string::npos; pos += shown.size())
            why.replace(pos, raw.size(), shown);
        throw RequestError(fmt::format("records[{}].url: {}", i, why));
    }
}

bool is_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// What the record says beside its URL must agree with it; its hashes become
// the package's (like an explicit file's "#sha256"), which the gate compares
// with the signed record. The first disagreement, as an INVALID reason.
std::optional<std::string> adopt_record(const GateRecord& rec, PackageUrl& p) {
    const struct {
        const char* field;
        const std::optional<std::string>& given;
        const std::string& from_url;
    } same[] = {{"fn", rec.fn, p.fn},
                {"name", rec.name, p.name.name},
                {"version", rec.version, p.name.version},
                {"build", rec.build, p.name.build},
                {"subdir", rec.subdir, p.subdir}};
    for (const auto& s : same)
        if (s.given && *s.given != s.from_url)
            return fmt::format("the record's {} {} disagrees with its URL ({})", s.field,
                               condaguard::quoted(*s.given), condaguard::quoted(s.from_url));
    const struct {
        const char* field;
        const std::optional<std::string>& given;
        std::size_t digits;
        std::optional<std::string>& in_url;
    } hashes[] = {{"sha256", rec.sha256, 64, p.sha256}, {"md5", rec.md5, 32, p.md5}};
    for (const auto& h : hashes) {
        if (!h.given) continue;
        if (h.given->size() != h.digits || !is_hex(*h.given))
            return fmt::format("the record's {} is not {} hex digits", h.field, h.digits);
        const std::string hex = lower(*h.given);
        if (h.in_url && *h.in_url != hex)
            return fmt::format("the record's {} disagrees with the #{} of its URL", h.field, h.field);
        h.in_url = hex;
    }
    return std::nullopt;
}

int serve(const GateArgs& a, const Reporter& out) {
    const GateRequest req = parse_request(read_request_document(STDIN_FILENO));
    const GateSetup setup = load_gate_setup(a.setup, out);

    // Records that disagree with their own URL are refused here; the others go to the gate.
    GateAnswer answer{.dry_run = req.dry_run};
    std::vector<PackageUrl> packages;
    std::vector<std::optional<std::size_t>> gated(req.records.size());  // index into `packages`
    for (std::size_t i = 0; i < req.records.size(); ++i) {
        const GateRecord& rec = req.records[i];
        PackageUrl p = package_of(rec, i, setup.cwd);
        answer.packages.push_back(GatePackage{.fn = p.fn, .result = Result{.path = redact_url(p.url)}});
        if (auto why = adopt_record(rec, p)) {
            answer.packages.back().result.verdict = Verdict::Invalid;
            answer.packages.back().result.reason = *why;
            continue;
        }
        gated[i] = packages.size();
        packages.push_back(std::move(p));
    }
    refuse_remote_when_offline(setup.conda, packages);
    if (packages.empty()) return out.gate_answer(answer);

    GateOptions o = gate_options(setup, out);
    // A dry run opens no package directory, not even to see which is writable.
    o.pkgs_dirs = req.dry_run ? req.pkgs_dirs : writable_first(req.pkgs_dirs);
    o.jobs = a.jobs;
    o.dry_run = req.dry_run;
    const GateReport report = run_gate(packages, o, setup.env);
    answer.indexes = report.indexes;
    for (std::size_t i = 0; i < req.records.size(); ++i) {
        if (!gated[i]) continue;
        answer.packages[i].result = report.packages.at(*gated[i]);
        answer.packages[i].folder = report.folders.at(*gated[i]);
        answer.packages[i].cleaned = report.cleaned.at(*gated[i]);
        answer.packages[i].unverified_by = report.unverified_by.at(*gated[i]);
    }
    return out.gate_answer(answer);
}

int run_gate_command(const GateArgs& a, const Reporter& out) {
    // Whatever stops the run, the answer is a JSON document.
    try {
        return serve(a, out);
    } catch (const CommandError& e) {
        return out.gate_stopped(e.what());
    } catch (const std::exception& e) {
        return out.gate_stopped(e.what());
    }
}

}  // namespace

void add_gate_command(GuardApp& g) {
    auto a = std::make_shared<GateArgs>();
    CLI::App* sub = g.add("gate",
                          "The install gate for the conda plugin: package records as JSON on standard input, "
                          "verdicts and placed folders as JSON on standard output",
                          [a, &g] { return run_gate_command(*a, g.out); });
    a->setup.add_to(*sub);
    add_jobs_option(*sub, a->jobs);
}

}  // namespace condaguard::cli
