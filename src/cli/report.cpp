// The commands' output: see report.hpp for the rules. report_channel.cpp
// holds the channel and index reports (conda-guard only).
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <unistd.h>

namespace condaguard::cli {

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` and its
// code point, or 0 when it is not one (overlong, surrogate, too large,
// truncated, stray continuation byte).
std::size_t utf8_sequence(std::string_view s, char32_t& cp) {
    const auto b0 = static_cast<unsigned char>(s[0]);
    std::size_t n;
    char32_t min;
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    } else if ((b0 & 0xe0) == 0xc0) {
        n = 2, cp = b0 & 0x1f, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
        n = 3, cp = b0 & 0x0f, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
        n = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (s.size() < n) return 0;
    for (std::size_t i = 1; i < n; ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if ((b & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

// Code points a terminal acts on instead of showing: C0 and C1 controls, DEL,
// and the bidirectional overrides and isolates (which reorder what follows).
bool is_control(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

void append_hex(std::string& out, std::string_view bytes) {
    for (const char c : bytes) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
}

void print_json_document(const nlohmann::json& doc) {
    // error_handler_t::replace: file names that are not UTF-8 must not abort output.
    fmt::print("{}\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

nlohmann::json optional_json(const std::optional<std::string>& s) {
    return s ? nlohmann::json(*s) : nlohmann::json(nullptr);
}

constexpr std::size_t verdict_width = 13;  // UNTRUSTED_KEY

}  // namespace

std::string escape_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    while (!s.empty()) {
        char32_t cp = 0;
        const std::size_t n = utf8_sequence(s, cp);
        if (n == 0) {
            append_hex(out, s.substr(0, 1));
            s.remove_prefix(1);
            continue;
        }
        if (cp == '\\') {
            out += "\\\\";
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (is_control(cp)) {
            append_hex(out, s.substr(0, n));
        } else {
            out.append(s.substr(0, n));
        }
        s.remove_prefix(n);
    }
    return out;
}

std::size_t text_width(std::string_view s) {
    const std::string escaped = escape_text(s);
    // Escaped text is valid UTF-8: count the bytes that start a code point.
    return static_cast<std::size_t>(std::count_if(escaped.begin(), escaped.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
    }));
}

int exit_status(const std::vector<Result>& results) {
    int code = 0;
    for (const auto& r : results) code = std::max(code, exit_code(r.verdict));
    return code;
}

std::string_view status_word(int exit_status) {
    switch (exit_status) {
    case 0: return "ok";
    case 1: return "fail";
    default: return "error";
    }
}

void Reporter::warning(std::string_view message) const {
    fmt::print(stderr, "{}: warning: {}\n", prog_, escape_text(message));
}

void Reporter::notice(std::string_view message) const {
    fmt::print(stderr, "{}: {}\n", prog_, escape_text(message));
}

int Reporter::usage_error(std::string_view message) const {
    fmt::print(stderr, "{}: error: {}\nRun '{} --help' for usage.\n", prog_, escape_text(message), prog_);
    return 2;
}

int Reporter::error(int status, std::string_view message) const {
    fmt::print(stderr, "{}: error: {}\n", prog_, escape_text(message));
    if (json) print_json_document({{"version", json_version}, {"status", status_word(status)}, {"error", message}});
    return status;
}

void Reporter::print_envelope(std::string_view command, int status, nlohmann::json body) const {
    nlohmann::json doc{{"version", json_version}, {"command", command}, {"status", status_word(status)}};
    for (auto& [k, v] : body.items()) doc[k] = std::move(v);
    print_json_document(doc);
}

std::string Reporter::fingerprint_text(std::string_view fingerprint) const {
    if (verbose) return escape_text(fingerprint);
    return escape_text(fingerprint.substr(0, short_fingerprint_digits));
}

std::string Reporter::reason_text(const Result& r) const {
    std::string reason = r.reason;
    if (!verbose && r.fingerprint && r.fingerprint->size() > short_fingerprint_digits) {
        const std::string& fp = *r.fingerprint;
        for (std::size_t pos = 0; (pos = reason.find(fp, pos)) != std::string::npos;) {
            reason.replace(pos, fp.size(), fp.substr(0, short_fingerprint_digits));
            pos += short_fingerprint_digits;
        }
    }
    return escape_text(reason);
}

void Reporter::print_result_lines(const std::vector<const Result*>& results, std::size_t path_width) const {
    for (const Result* r : results) {
        const std::string path = escape_text(r->path);
        const std::size_t pad = path_width > text_width(r->path) ? path_width - text_width(r->path) : 0;
        fmt::print("{}{:{}}  {:<{}}  {}\n", path, "", pad, to_string(r->verdict), verdict_width, reason_text(*r));
    }
}

nlohmann::json to_json(const Result& r) {
    return {{"path", r.path},
            {"verdict", to_string(r.verdict)},
            {"reason", r.reason},
            {"key", optional_json(r.key)},
            {"fingerprint", optional_json(r.fingerprint)}};
}

int Reporter::results(std::string_view command, const std::vector<Result>& results) const {
    const int status = exit_status(results);
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& r : results) arr.push_back(to_json(r));
        print_envelope(command, status, {{"results", std::move(arr)}});
        return status;
    }
    std::vector<const Result*> lines;
    std::size_t width = 0;
    for (const auto& r : results) {
        lines.push_back(&r);
        width = std::max(width, text_width(r.path));
    }
    print_result_lines(lines, width);
    return status;
}

void Reporter::generating_key() const {
    if (!json) fmt::print("Generating public/private key pair...\n");
}

int Reporter::key_stored(std::string_view command, const StoredKey& key) const {
    if (json) {
        print_envelope(command, 0,
                       {{"key",
                         {{"name", key.name},
                          {"type", key.type},
                          {"bits", key.bits},
                          {"private_key", key.private_key.string()},
                          {"public_key", key.public_key.string()},
                          {"fingerprint", key.fingerprint}}}});
        return 0;
    }
    fmt::print("Storing private key: {}\n", escape_text(key.private_key.string()));
    fmt::print("Storing public key : {}\n", escape_text(key.public_key.string()));
    // Always in full: this is the line people copy to compare keys.
    fmt::print("Fingerprint (SHA-256 of the public key): {}\n", escape_text(key.fingerprint));
    return 0;
}

int Reporter::signed_files(const SignReport& report) const {
    int status = 0;
    for (const auto& f : report.files)
        if (!f.sig) status = 2;
    if (json) {
        nlohmann::json files = nlohmann::json::array();
        for (const auto& f : report.files) {
            if (f.sig)
                files.push_back({{"path", f.path}, {"sig", f.sig->string()}});
            else
                files.push_back({{"path", f.path}, {"error", f.error}});
        }
        print_envelope("sign", status,
                       {{"key", report.key}, {"fingerprint", report.fingerprint}, {"files", std::move(files)}});
        return status;
    }
    fmt::print("Using private key '{}' ({}) for signing.\n", escape_text(report.key),
               fingerprint_text(report.fingerprint));
    for (const auto& f : report.files) {
        if (f.sig)
            fmt::print("signing: {}\n", escape_text(f.path));
        else
            fmt::print(stderr, "{}: error: {}: not signed: {}\n", prog_, escape_text(f.path), escape_text(f.error));
    }
    return status;
}

namespace {

nlohmann::json key_json(const KeyInfo& k) {
    nlohmann::json j{{"name", k.name},
                     {"public_key", k.public_key.string()},
                     {"has_private_key", k.has_private_key},
                     {"status", to_string(k.verdict)}};
    if (k.verdict == Verdict::Valid) {
        j["type"] = k.type;
        j["bits"] = k.bits;
        j["fingerprint"] = k.fingerprint;
    } else {
        j["reason"] = k.reason;
    }
    if (!k.pem.empty()) j["pem"] = k.pem;
    return j;
}

int keys_status(const std::vector<KeyInfo>& keys) {
    int status = 0;
    for (const auto& k : keys) status = std::max(status, exit_code(k.verdict));
    return status;
}

}  // namespace

int Reporter::keys_list(const std::filesystem::path& dir, const std::vector<KeyInfo>& keys) const {
    const int status = keys_status(keys);
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& k : keys) arr.push_back(key_json(k));
        print_envelope("keys list", status, {{"keys", std::move(arr)}});
        return status;
    }
    if (keys.empty()) notice(fmt::format("no public keys in {}", dir.string()));
    std::size_t width = 0;
    for (const auto& k : keys) width = std::max(width, text_width(k.name));
    // NAME  VALID          rsa 2048  FINGERPRINT  (private key present)
    // NAME  BAD_KEY        reason
    for (const auto& k : keys) {
        const std::string name = escape_text(k.name);
        const std::size_t pad = width - text_width(k.name);
        if (k.verdict == Verdict::Valid)
            fmt::print("{}{:{}}  {:<{}}  {:<7} {:>5}  {}{}\n", name, "", pad, to_string(k.verdict), verdict_width,
                       escape_text(k.type), k.bits, fingerprint_text(k.fingerprint),
                       k.has_private_key ? "  (private key present)" : "");
        else
            fmt::print("{}{:{}}  {:<{}}  {}\n", name, "", pad, to_string(k.verdict), verdict_width,
                       escape_text(k.reason));
    }
    return status;
}

int Reporter::key_show(const KeyInfo& k) const {
    const int status = exit_code(k.verdict);
    if (json) {
        print_envelope("keys show", status, {{"key", key_json(k)}});
        return status;
    }
    fmt::print("name:        {}\npublic key:  {}\n", escape_text(k.name), escape_text(k.public_key.string()));
    if (k.verdict == Verdict::Valid)
        // Always in full: this is the line people compare out of band.
        fmt::print("type:        {} {}\nfingerprint: {}\n", escape_text(k.type), k.bits, escape_text(k.fingerprint));
    else
        fmt::print("status:      {} {}\n", to_string(k.verdict), escape_text(k.reason));
    fmt::print("private key: {}\n", k.has_private_key ? "present" : "absent");
    if (!k.pem.empty()) fmt::print("{}", k.pem);  // PEM: base64 and dashes, made by OpenSSL from the parsed key
    return status;
}

int Reporter::keys_removed(const std::vector<std::filesystem::path>& removed) const {
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& p : removed) arr.push_back(p.string());
        print_envelope("keys remove", 0, {{"removed", std::move(arr)}});
        return 0;
    }
    for (const auto& p : removed) fmt::print("removed: {}\n", escape_text(p.string()));
    return 0;
}

int Reporter::state_show(const nlohmann::json& state) const {
    if (json) {
        print_envelope("state show", 0, {{"state", state}});
        return 0;
    }
    if (state.contains("channels"))
        for (const auto& [ch, subdirs] : state["channels"].items())
            for (const auto& [sd, e] : subdirs.items())
                fmt::print("{} {} version {} signed {}\n", escape_text(ch), escape_text(sd),
                           e.value("version", std::int64_t{0}), escape_text(e.value("signed_at", "?")));
    if (state.contains("locations"))
        for (const auto& [loc, ch] : state["locations"].items())
            fmt::print("location {} -> {}\n", escape_text(loc),
                       escape_text(ch.is_string() ? ch.get<std::string>() : ch.dump()));
    return 0;
}

int Reporter::state_reset(const std::string& channel) const {
    if (json)
        print_envelope("state reset", 0, {{"channel", channel}});
    else
        fmt::print("forgot channel '{}'\n", escape_text(channel));
    return 0;
}

ProgressLine::ProgressLine(const Reporter& out) : enabled_(!out.json && ::isatty(STDERR_FILENO) == 1) {}

ProgressLine::~ProgressLine() {
    if (enabled_ && shown_) fmt::print(stderr, "\r\033[K");
}

void ProgressLine::draw(std::string_view text) {
    if (!enabled_) return;
    shown_ = true;
    fmt::print(stderr, "\r\033[K{}", text);
    std::fflush(stderr);
}

}  // namespace condaguard::cli
