#include <condaguard/config/policy.hpp>

#include <condaguard/sys/url.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/secure_dir.hpp>
#include <condaguard/sys/text.hpp>
#include <condaguard/trust/key_name.hpp>

#include "yaml_tree.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>
#include <sys/stat.h>

namespace condaguard {

namespace {

namespace stdfs = std::filesystem;
using yaml::Node;

constexpr std::string_view sha256_prefix = "sha256:";
constexpr std::size_t fingerprint_hex_digits = 64;

std::string position(const std::string& file, const Node& n) { return fmt::format("{}:{}:{}", file, n.line, n.column); }

// Reads one file's settings over a base policy.
class Reader {
public:
    Reader(const std::string& file, Policy& policy) : file_(file), p_(policy) {}

    void read(const Node& root) {
        if (root.kind == Node::Kind::Null) return;  // an empty file changes nothing
        if (!root.is_map()) fail(root, "", fmt::format("expected a mapping of settings, found {}", yaml::describe(root)));
        for (const auto& [k, v] : root.entries) setting(k, v);
    }

private:
    [[noreturn]] void fail(const Node& at, std::string_view key, const std::string& what) const {
        if (key.empty()) throw PolicyError(fmt::format("{}: {}", position(file_, at), what));
        throw PolicyError(fmt::format("{}: key {}: {}", position(file_, at), condaguard::quoted(key), what));
    }

    std::string src(const Node& n) const { return position(file_, n); }

    const std::string& scalar(const Node& n, std::string_view key, std::string_view expected) const {
        if (!n.is_scalar()) fail(n, key, fmt::format("expected {}, found {}", expected, yaml::describe(n)));
        return n.scalar;
    }

    std::uint64_t whole_number(const Node& n, std::string_view key, std::uint64_t lo, std::uint64_t hi) const {
        const std::string expected = fmt::format("a whole number from {} to {}", lo, hi);
        const std::string& s = scalar(n, key, expected);
        std::uint64_t v = 0;
        const bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!n.plain || !digits || std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc{} || v < lo ||
            v > hi)
            fail(n, key, fmt::format("expected {}, found {}", expected, condaguard::quoted(s)));
        return v;
    }

    Seconds duration(const Node& n, std::string_view key) const {
        const std::string& s = scalar(n, key, "a duration like 30d, 12h, 15m or 10s");
        auto d = parse_duration(s);
        if (!d) fail(n, key, fmt::format("expected a duration like 30d, 12h, 15m or 10s, found {}", condaguard::quoted(s)));
        return *d;
    }

    // 1GiB, 512MiB, 64KiB, 100B, or a number of bytes.
    std::uint64_t size(const Node& n, std::string_view key) const {
        constexpr std::string_view expected = "a size like 1GiB, 512MiB, 64KiB or 1000B";
        const std::string& s = scalar(n, key, expected);
        std::size_t digits = 0;
        while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
        const std::string_view unit = std::string_view(s).substr(digits);
        std::uint64_t mult = 0;
        if (unit.empty() || unit == "B") mult = 1;
        else if (unit == "KiB") mult = std::uint64_t{1} << 10;
        else if (unit == "MiB") mult = std::uint64_t{1} << 20;
        else if (unit == "GiB") mult = std::uint64_t{1} << 30;
        std::uint64_t v = 0;
        if (digits == 0 || mult == 0 || std::from_chars(s.data(), s.data() + digits, v).ec != std::errc{} || v == 0 ||
            v > std::numeric_limits<std::uint64_t>::max() / mult)
            fail(n, key, fmt::format("expected {}, found {}", expected, condaguard::quoted(s)));
        return v * mult;
    }

    // 64 hex digits, with or without "sha256:", any case; returned in lowercase.
    std::string fingerprint(const Node& n, std::string_view key) const {
        std::string s = scalar(n, key, "a fingerprint (64 hex digits)");
        const std::string raw = s;
        if (s.starts_with(sha256_prefix)) s.erase(0, sha256_prefix.size());
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        const bool hex = std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
        if (s.size() != fingerprint_hex_digits || !hex)
            fail(n, key, fmt::format("expected a fingerprint (64 hex digits, the SHA-256 of the key's SPKI DER), found {}",
                                     condaguard::quoted(raw)));
        return s;
    }

    template <class E>
    E choice(const Node& n, std::string_view key, std::initializer_list<std::pair<std::string_view, E>> choices) const {
        std::string names;
        for (const auto& [name, _] : choices) names += (names.empty() ? "" : " or ") + std::string(name);
        const std::string& s = scalar(n, key, names);
        for (const auto& [name, value] : choices)
            if (s == name) return value;
        fail(n, key, fmt::format("expected {}, found {}", names, condaguard::quoted(s)));
    }

    const Node& map(const Node& n, std::string_view key) const {
        if (!n.is_map()) fail(n, key, fmt::format("expected a mapping, found {}", yaml::describe(n)));
        return n;
    }
    const Node& list(const Node& n, std::string_view key) const {
        if (!n.is_sequence()) fail(n, key, fmt::format("expected a list, found {}", yaml::describe(n)));
        return n;
    }

    void setting(const Node& k, const Node& v) {
        const std::string& key = k.scalar;
        if (key == "min_rsa_bits") {
            p_.min_rsa_bits = {static_cast<unsigned>(whole_number(v, key, lowest_min_rsa_bits, max_rsa_bits)), src(v)};
        } else if (key == "revoked_keys") {
            for (const Node& item : list(v, key).items) revoked(item);
        } else if (key == "max_index_age") {
            p_.max_index_age = Sourced<Seconds>{duration(v, key), src(v)};
        } else if (key == "max_index_bytes") {
            p_.max_index_bytes = {size(v, key), src(v)};
        } else if (key == "parallel") {
            p_.parallel = {static_cast<unsigned>(whole_number(v, key, 1, max_parallel_transfers)), src(v)};
        } else if (key == "min_age") {
            p_.min_age = Sourced<Seconds>{duration(v, key), src(v)};
        } else if (key == "link_scripts") {
            p_.link_scripts = {choice<LinkScripts>(v, key, {{"allow", LinkScripts::Allow}, {"refuse", LinkScripts::Refuse}}),
                               src(v)};
        } else if (key == "channels") {
            for (const Node& item : list(v, key).items) channel(item);
        } else {
            fail(k, key, "unknown key (see conda-guard-policy(5))");
        }
    }

    void revoked(const Node& item) {
        const Node& m = map(item, "revoked_keys");
        RevokedKey r{.source = src(item)};
        bool has_fp = false, has_reason = false, has_date = false;
        for (const auto& [k, v] : m.entries) {
            const std::string key = "revoked_keys." + k.scalar;
            if (k.scalar == "fingerprint") {
                r.fingerprint = fingerprint(v, key);
                has_fp = true;
            } else if (k.scalar == "reason") {
                r.reason = scalar(v, key, "a string");
                if (r.reason.empty() || r.reason.find_first_of("\r\n") != std::string::npos)
                    fail(v, key, "expected one line of text");
                has_reason = true;
            } else if (k.scalar == "date") {
                r.date = scalar(v, key, "a date (YYYY-MM-DD or an RFC 3339 UTC time)");
                if (!parse_time(r.date) && !parse_time(r.date + "T00:00:00Z"))
                    fail(v, key, fmt::format("expected a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ), found {}",
                                             condaguard::quoted(r.date)));
                has_date = true;
            } else {
                fail(k, key, "unknown key (expected fingerprint, reason, date)");
            }
        }
        if (!has_fp) fail(item, "revoked_keys", "an entry without a fingerprint");
        if (!has_reason) fail(item, "revoked_keys", "an entry without a reason");
        if (!has_date) fail(item, "revoked_keys", "an entry without a date");
        auto same = std::find_if(p_.revoked_keys.begin(), p_.revoked_keys.end(),
                                 [&](const RevokedKey& x) { return x.fingerprint == r.fingerprint; });
        if (same != p_.revoked_keys.end())
            *same = std::move(r);
        else
            p_.revoked_keys.push_back(std::move(r));
    }

    std::string match(const Node& n) const {
        constexpr std::string_view key = "channels.match";
        std::string s = scalar(n, key, "a channel name or URL prefix");
        if (s.find("://") != std::string::npos) {
            const auto u = parse_url(s);
            if (!u) fail(n, key, fmt::format("expected a URL like https://host/path, found {}", condaguard::quoted(s)));
            if (u->has_credentials() || s.find_first_of("?#") != std::string::npos)
                fail(n, key, "a URL prefix without credentials (user:pass@, /t/TOKEN), query or fragment");
            return u->without_credentials();
        }
        const bool ok = !s.empty() && s.back() != '/' && s.front() != '/' &&
                        std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > ' ' && c < 0x7f; });
        if (!ok) fail(n, key, fmt::format("expected a channel name like conda-forge or pkgs/main, found {}", condaguard::quoted(s)));
        return s;
    }

    void channel(const Node& item) {
        const Node& m = map(item, "channels");
        const Node* match_node = nullptr;
        for (const auto& [k, v] : m.entries)
            if (k.scalar == "match") match_node = &v;
        if (match_node == nullptr) fail(item, "channels", "a rule without 'match'");
        const std::string name = match(*match_node);
        auto it = std::find_if(p_.channels.begin(), p_.channels.end(), [&](const ChannelRule& r) { return r.match == name; });
        if (it == p_.channels.end()) {
            p_.channels.push_back(ChannelRule{.match = name});
            it = std::prev(p_.channels.end());
        }
        ChannelRule& rule = *it;
        rule.source = src(*match_node);
        const Node* signatures_node = nullptr;  // this item's signatures, else its first other setting
        const Node* conflict_node = nullptr;
        for (const auto& [k, v] : m.entries) {
            const std::string key = "channels." + k.scalar;
            if (k.scalar == "match") {
                continue;
            } else if (k.scalar == "keys") {
                AllowedKeys keys;
                for (const Node& kn : list(v, key).items) {
                    const std::string& s = scalar(kn, key, "a key name or sha256:FINGERPRINT");
                    if (s.starts_with(sha256_prefix)) {
                        keys.fingerprints.push_back(fingerprint(kn, key));
                    } else if (auto why = KeyName::problem(s)) {
                        fail(kn, key, "expected a key name or sha256:FINGERPRINT: " + *why);
                    } else {
                        keys.names.push_back(s);
                    }
                }
                if (keys.names.empty() && keys.fingerprints.empty())
                    fail(v, key, "an empty list allows no key at all; leave 'keys' out to allow any key in the keys directory");
                rule.keys = Sourced<AllowedKeys>{std::move(keys), src(v)};
            } else if (k.scalar == "index") {
                rule.index = {choice<IndexRule>(v, key, {{"required", IndexRule::Required}, {"if-signed", IndexRule::IfSigned}}),
                              src(v)};
            } else if (k.scalar == "channel_id") {
                const std::string& s = scalar(v, key, "a channel id");
                if (s.empty() || s.find_first_of("\r\n") != std::string::npos) fail(v, key, "expected a channel id");
                rule.channel_id = Sourced<std::string>{s, src(v)};
            } else if (k.scalar == "signatures") {
                rule.signatures = {choice<SignatureRule>(v, key, {{"required", SignatureRule::Required}, {"none", SignatureRule::None}}),
                                   src(v)};
                signatures_node = &v;
            } else {
                fail(k, key, "unknown key (expected match, keys, index, channel_id, signatures)");
            }
            if (k.scalar != "signatures" && conflict_node == nullptr) conflict_node = &v;
        }
        refuse_unsigned_conflicts(rule, signatures_node ? *signatures_node : conflict_node ? *conflict_node : *match_node);
    }

    // signatures: none leaves nothing to check a key, channel id or signed
    // index against; the rule as merged so far (this file over earlier ones)
    // may not ask for one. `at`: where in this file to point.
    void refuse_unsigned_conflicts(const ChannelRule& rule, const Node& at) const {
        if (rule.signatures.value != SignatureRule::None) return;
        auto refuse = [&](std::string_view what, const std::string& source) {
            fail(at, "channels.signatures",
                 fmt::format("'signatures: none' ({}) conflicts with '{}' ({}) in the rule for {}: an unsigned channel "
                             "has no key, channel id or signed index to check",
                             rule.signatures.source, what, source, condaguard::quoted(rule.match)));
        };
        if (rule.keys) refuse("keys", rule.keys->source);
        if (rule.channel_id) refuse("channel_id", rule.channel_id->source);
        if (rule.index.value == IndexRule::Required) refuse("index: required", rule.index.source);
    }

    const std::string& file_;
    Policy& p_;
};

}  // namespace

std::string_view to_string(IndexRule r) noexcept { return r == IndexRule::Required ? "required" : "if-signed"; }
std::string_view to_string(SignatureRule r) noexcept { return r == SignatureRule::None ? "none" : "required"; }
std::string_view to_string(LinkScripts l) noexcept { return l == LinkScripts::Refuse ? "refuse" : "allow"; }

bool AllowedKeys::allows(std::string_view key_name, std::string_view fp) const {
    return std::find(names.begin(), names.end(), key_name) != names.end() ||
           std::find(fingerprints.begin(), fingerprints.end(), fp) != fingerprints.end();
}

const ChannelRule* Policy::rule_for(std::string_view canonical_name, std::string_view url) const {
    const ChannelRule* best = nullptr;
    for (const ChannelRule& r : channels) {
        if (!r.is_url_prefix()) {
            if (r.match == canonical_name) return &r;
            continue;
        }
        if ((url_has_prefix(url, r.match) || url_has_prefix(canonical_name, r.match)) &&
            (best == nullptr || r.match.size() > best->match.size()))
            best = &r;
    }
    return best;
}

const RevokedKey* Policy::revoked(std::string_view fingerprint) const {
    std::string fp(fingerprint);
    std::transform(fp.begin(), fp.end(), fp.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const RevokedKey& r : revoked_keys)
        if (r.fingerprint == fp) return &r;
    return nullptr;
}

PolicySources default_policy_sources(const std::filesystem::path& home) {
    return PolicySources{.files = {"/etc/conda/guard.yaml", home / ".conda" / "guard.yaml"}, .explicit_file = false};
}

Policy parse_policy(std::string_view text, const std::string& file, Policy base) {
    Node root;
    try {
        root = yaml::parse(text);
    } catch (const yaml::Fault& f) {
        throw PolicyError(fmt::format("{}:{}:{}: {}", file, f.line(), f.column(), f.what()));
    }
    Reader(file, base).read(root);
    return base;
}

namespace {

// The file's text, or nullopt when it is missing and may be.
std::optional<std::string> read_policy_file(const stdfs::path& path, bool must_exist) {
    const std::string name = path.string();
    const stdfs::path dir = path.has_parent_path() ? path.parent_path() : stdfs::path(".");
    const std::string base = path.filename().string();
    if (base.empty() || base == "." || base == "..") throw PolicyError(name + ": not a file name");
    fs::Fd dirfd;
    try {
        dirfd = fs::open_secure_dir(dir);
    } catch (const fs::UnsafeDirectory& e) {
        if (e.fault().kind == fs::DirFaultKind::Missing && !must_exist) return std::nullopt;
        // A default file that is not there is skipped, whatever its folder:
        // nothing of an unsafe folder is read.
        struct stat st {};
        if (!must_exist && ::lstat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
        throw PolicyError(fmt::format("{}: cannot use the policy: {}", name, e.what()));
    }
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted_at(dirfd.get(), base, path);
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing && !must_exist) return std::nullopt;
        throw PolicyError(fmt::format("{}: {}", name, e.what()));
    } catch (const std::system_error& e) {
        throw PolicyError(fmt::format("{}: {}", name, e.what()));
    }
    if (auto why = fs::foreign_owner(f.st)) throw PolicyError(fmt::format("{}: is {}", name, *why));
    if (auto why = fs::writable_by_others(f.st)) throw PolicyError(fmt::format("{}: is {}", name, *why));
    fs::CappedRead r = fs::read_capped(f.fd.get(), max_policy_file_bytes, name);
    if (r.too_big) throw PolicyError(fmt::format("{}: larger than {} bytes", name, max_policy_file_bytes));
    return std::move(r.data);
}

}  // namespace

Policy load_policy(const PolicySources& sources) {
    if (sources.explicit_file && sources.files.size() != 1)
        throw PolicyError("exactly one policy file may be named");
    Policy p;
    for (const stdfs::path& file : sources.files) {
        auto text = read_policy_file(file, sources.explicit_file);
        if (text) p = parse_policy(*text, file.string(), std::move(p));
    }
    return p;
}

}  // namespace condaguard
