#include <condaguard/config/condarc.hpp>

#include <condaguard/sys/url.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/text.hpp>

#include "yaml_tree.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fcntl.h>
#include <memory>
#include <set>

namespace condaguard {

namespace {

namespace stdfs = std::filesystem;
using yaml::Node;

// The keys read, with their aliases (conda/base/context.py).
enum class Key {
    Channels, DefaultChannels, ChannelAlias, CustomChannels, CustomMultichannels, SslVerify, ClientCert,
    ClientCertKey, ProxyServers, ConnectTimeout, ReadTimeout, MaxRetries, BackoffFactor, PkgsDirs, Offline,
    UseZst, Subdirs, Subdir, EnvsDirs,
};

struct KeyName {
    std::string_view name;
    Key key;
};
constexpr std::array<KeyName, 24> key_names{{
    {"channels", Key::Channels},
    {"channel", Key::Channels},
    {"default_channels", Key::DefaultChannels},
    {"channel_alias", Key::ChannelAlias},
    {"custom_channels", Key::CustomChannels},
    {"custom_multichannels", Key::CustomMultichannels},
    {"ssl_verify", Key::SslVerify},
    {"verify_ssl", Key::SslVerify},
    {"client_ssl_cert", Key::ClientCert},
    {"client_cert", Key::ClientCert},
    {"client_ssl_cert_key", Key::ClientCertKey},
    {"client_cert_key", Key::ClientCertKey},
    {"proxy_servers", Key::ProxyServers},
    {"remote_connect_timeout_secs", Key::ConnectTimeout},
    {"remote_read_timeout_secs", Key::ReadTimeout},
    {"remote_max_retries", Key::MaxRetries},
    {"remote_backoff_factor", Key::BackoffFactor},
    {"pkgs_dirs", Key::PkgsDirs},
    {"offline", Key::Offline},
    {"repodata_use_zst", Key::UseZst},
    {"subdirs", Key::Subdirs},
    {"subdir", Key::Subdir},
    {"envs_dirs", Key::EnvsDirs},
    {"envs_path", Key::EnvsDirs},
}};

std::optional<Key> key_of(std::string_view name) {
    for (const auto& k : key_names)
        if (k.name == name) return k.key;
    return std::nullopt;
}

// One source's value for a key: a YAML node, or an environment variable's text.
struct Match {
    std::string name;    // the key as written, or the variable's name
    std::string source;  // FILE:LINE:COL or the variable's name
    std::string file;    // the file, for a YAML node
    const Node* node = nullptr;
    std::string env_text;
    bool final = false;
};

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return "";
    return std::string(s.substr(b, s.find_last_not_of(" \t") - b + 1));
}

// Whether line `line` (1-based) of `text` carries a "#!final" comment.
bool has_final_flag(std::string_view text, int line) {
    for (int i = 1; i < line; ++i) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) return false;
        text.remove_prefix(nl + 1);
    }
    text = text.substr(0, text.find('\n'));
    char quote = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quote != 0) {
            if (c == quote) quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
            return text.substr(i).starts_with("#!final");
        }
    }
    return false;
}

bool is_condarc_name(const std::string& name) {
    return name == ".condarc" || name == "condarc" || name.ends_with(".yml") || name.ends_with(".yaml");
}

// ~ and $VAR / ${VAR} from `vars`; unset variables stay as written (as conda's custom_expandvars).
std::string expand(std::string_view s, const CondaEnvironment& env) {
    std::string out;
    if (s == "~" || s.starts_with("~/")) {
        out = env.home.string();
        s.remove_prefix(1);
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '$') {
            out += s[i];
            continue;
        }
        std::size_t j = i + 1;
        const bool braced = j < s.size() && s[j] == '{';
        if (braced) ++j;
        std::size_t k = j;
        while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '_')) ++k;
        if (k == j || (braced && (k >= s.size() || s[k] != '}'))) {
            out += s[i];
            continue;
        }
        const std::string name(s.substr(j, k - j));
        const std::size_t end = braced ? k + 1 : k;
        if (auto it = env.variables.find(name); it != env.variables.end())
            out += it->second;
        else
            out += s.substr(i, end - i);
        i = end - 1;
    }
    return out;
}

class Loader {
public:
    explicit Loader(const CondaEnvironment& env) : env_(env) {}

    CondaConfig load() {
        std::set<stdfs::path> seen;
        for (const stdfs::path& candidate : condarc_search_path(env_)) {
            std::error_code ec;
            const auto st = stdfs::status(candidate, ec);
            if (stdfs::is_regular_file(st)) {
                if (is_condarc_name(candidate.filename().string())) read_file(candidate, seen);
            } else if (stdfs::is_directory(st)) {
                std::vector<stdfs::path> names;
                for (const auto& e : stdfs::directory_iterator(candidate, ec)) {
                    const std::string n = e.path().filename().string();
                    if ((n.ends_with(".yml") || n.ends_with(".yaml")) && e.is_regular_file(ec)) names.push_back(e.path());
                }
                std::sort(names.begin(), names.end());
                for (const auto& p : names) read_file(p, seen);
            }
        }
        read_environment();
        return build();
    }

private:
    [[noreturn]] static void fail(const std::string& at, std::string_view key, const std::string& what) {
        throw CondarcError(fmt::format("{}: key {}: {}", at, condaguard::quoted(key), what));
    }

    void read_file(const stdfs::path& path, std::set<stdfs::path>& seen) {
        std::error_code ec;
        const stdfs::path canonical = stdfs::weakly_canonical(path, ec);
        if (!seen.insert(ec ? path : canonical).second) return;
        const std::string name = path.string();
        // Links are followed (conda follows them; dotfile managers link ~/.condarc),
        // but only a regular file is read, and without blocking on a FIFO.
        fs::Fd fd = fs::open_raw(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
        if (!fd) {
            if (errno == ENOENT) return;
            throw CondarcError(fmt::format("{}: {}", name, fs::errno_error("open").what()));
        }
        const struct stat st = fs::fstat_or_throw(fd.get(), name);
        if (!S_ISREG(st.st_mode))
            throw CondarcError(fmt::format("{}: is {}, not a regular file", name, fs::describe(fs::kind_of(st.st_mode))));
        fs::CappedRead r = fs::read_capped(fd.get(), max_condarc_bytes, name);
        if (r.too_big) throw CondarcError(fmt::format("{}: larger than {} bytes", name, max_condarc_bytes));
        texts_.push_back(std::make_unique<std::string>(std::move(r.data)));
        const std::string& text = *texts_.back();
        try {
            trees_.push_back(std::make_unique<Node>(yaml::parse(text)));
        } catch (const yaml::Fault& f) {
            throw CondarcError(fmt::format("{}:{}:{}: {}", name, f.line(), f.column(), f.what()));
        }
        files_.push_back(path);
        const Node& root = *trees_.back();
        if (root.kind == Node::Kind::Null) return;
        if (!root.is_map())
            throw CondarcError(fmt::format("{}:{}:{}: expected a mapping of settings, found {}", name, root.line,
                                           root.column, yaml::describe(root)));
        for (const auto& [k, v] : root.entries) {
            const auto key = key_of(k.scalar);
            if (!key) continue;
            matches_[*key].push_back(Match{.name = k.scalar,
                                           .source = fmt::format("{}:{}:{}", name, v.line, v.column),
                                           .file = name,
                                           .node = &v,
                                           .final = has_final_flag(text, k.line)});
        }
    }

    void read_environment() {
        for (const auto& k : key_names) {
            const std::string var = "CONDA_" + upper(k.name);
            if (auto it = env_.variables.find(var); it != env_.variables.end())
                matches_[k.key].push_back(Match{.name = var, .source = var, .env_text = it->second});
        }
    }

    // The matches that count: up to and including the first marked #!final.
    std::vector<const Match*> relevant(Key key) const {
        std::vector<const Match*> out;
        auto it = matches_.find(key);
        if (it == matches_.end()) return out;
        for (const Match& m : it->second) {
            out.push_back(&m);
            if (m.final) break;
        }
        return out;
    }

    std::string text(const Match& m, const Node& n) const {
        if (!n.is_scalar()) fail(m.source, m.name, fmt::format("expected a string, found {}", yaml::describe(n)));
        return n.scalar;
    }

    std::vector<std::string> list(const Match& m) const {
        std::vector<std::string> out;
        if (!m.node) {
            std::string_view s = m.env_text;
            // conda splits envs_dirs from the environment on os.pathsep, every other list on ','.
            const char sep = m.name == "CONDA_ENVS_DIRS" || m.name == "CONDA_ENVS_PATH" ? ':' : ',';
            while (!s.empty()) {
                const auto comma = s.find(sep);
                if (std::string item = trim(s.substr(0, comma)); !item.empty()) out.push_back(std::move(item));
                s.remove_prefix(comma == std::string_view::npos ? s.size() : comma + 1);
            }
            return out;
        }
        if (m.node->kind == Node::Kind::Null) return out;
        if (!m.node->is_sequence())
            fail(m.source, m.name, fmt::format("expected a list, found {}", yaml::describe(*m.node)));
        for (const Node& item : m.node->items) out.push_back(text(m, item));
        return out;
    }

    static std::optional<bool> boolean(std::string_view s) {
        const std::string l = upper(s);
        if (l == "TRUE" || l == "YES" || l == "ON" || l == "Y" || l == "1") return true;
        if (l == "FALSE" || l == "NO" || l == "OFF" || l == "N" || l == "0") return false;
        return std::nullopt;
    }

    std::string scalar(const Match& m) const { return m.node ? text(m, *m.node) : m.env_text; }

    bool to_bool(const Match& m) const {
        const std::string s = scalar(m);
        auto b = boolean(s);
        if (!b || (m.node && !m.node->plain)) fail(m.source, m.name, fmt::format("expected true or false, found {}", condaguard::quoted(s)));
        return *b;
    }

    double to_number(const Match& m) const {
        const std::string s = trim(scalar(m));
        double v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v) || v < 0)
            fail(m.source, m.name, fmt::format("expected a number of seconds or more, found {}", condaguard::quoted(s)));
        return v;
    }

    unsigned to_count(const Match& m) const {
        const std::string s = trim(scalar(m));
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v > 100)
            fail(m.source, m.name, fmt::format("expected a whole number from 0 to 100, found {}", condaguard::quoted(s)));
        return v;
    }

    template <class T, class F>
    void last(Key key, Sourced<T>& out, F convert) const {
        for (const Match* m : relevant(key)) out = Sourced<T>{convert(*m), m->source};
    }

    // Higher precedence first, without duplicates.
    void merged_list(Key key, Sourced<std::vector<std::string>>& out) const {
        const auto ms = relevant(key);
        if (ms.empty()) return;
        std::vector<std::string> all;
        for (auto it = ms.rbegin(); it != ms.rend(); ++it)
            for (std::string& s : list(**it))
                if (std::find(all.begin(), all.end(), s) == all.end()) all.push_back(std::move(s));
        out = {std::move(all), ms.back()->source};
    }

    // pkgs_dirs or envs_dirs: the merged list, each expanded and normalised
    // (no trailing '/'), without duplicates; when none is set, conda's
    // default ROOT/LEAF (when the root is known), then ~/.conda/LEAF.
    Sourced<std::vector<stdfs::path>> dir_list(Key key, const char* leaf) const {
        Sourced<std::vector<std::string>> given;
        merged_list(key, given);
        Sourced<std::vector<stdfs::path>> out;
        if (given.value.empty()) {
            if (!env_.root_prefix.empty()) out.value.push_back(env_.root_prefix / leaf);
            out.value.push_back(env_.home / ".conda" / leaf);
            return out;
        }
        out.source = given.source;
        for (const std::string& p : given.value) {
            std::string n = stdfs::path(expand(p, env_)).lexically_normal().string();
            while (n.size() > 1 && n.ends_with("/")) n.pop_back();
            stdfs::path e(std::move(n));
            if (std::find(out.value.begin(), out.value.end(), e) == out.value.end()) out.value.push_back(std::move(e));
        }
        return out;
    }

    template <class T, class F>
    void merged_map(Key key, std::map<std::string, Sourced<T>>& out, F convert) const {
        for (const Match* m : relevant(key)) {
            if (!m->node) continue;  // maps are not given through the environment
            if (m->node->kind == Node::Kind::Null) continue;
            if (!m->node->is_map())
                fail(m->source, m->name, fmt::format("expected a mapping, found {}", yaml::describe(*m->node)));
            for (const auto& [k, v] : m->node->entries) {
                Match item{.name = m->name + "." + k.scalar,
                           .source = fmt::format("{}:{}:{}", m->file, v.line, v.column),
                           .file = m->file,
                           .node = &v};
                out[k.scalar] = Sourced<T>{convert(item), item.source};
            }
        }
    }

    CondaConfig build() const {
        CondaConfig c;
        c.home = env_.home;
        c.files = files_;
        merged_list(Key::Channels, c.channels);
        merged_list(Key::DefaultChannels, c.default_channels);
        last(Key::ChannelAlias, c.channel_alias, [&](const Match& m) {
            std::string s = scalar(m);
            while (s.ends_with("/")) s.pop_back();
            if (!parse_url(s)) fail(m.source, m.name, fmt::format("expected a URL with a scheme, found {}", condaguard::quoted(redact_url(s))));
            return s;
        });
        merged_map(Key::CustomChannels, c.custom_channels, [&](const Match& m) {
            std::string s = scalar(m);
            while (s.ends_with("/")) s.pop_back();
            if (!parse_url(s)) fail(m.source, m.name, fmt::format("expected a URL with a scheme, found {}", condaguard::quoted(redact_url(s))));
            return s;
        });
        merged_map(Key::CustomMultichannels, c.custom_multichannels, [&](const Match& m) { return list(m); });
        last(Key::SslVerify, c.ssl_verify, [&](const Match& m) {
            const std::string s = scalar(m);
            if (auto b = boolean(s); b && (!m.node || m.node->plain))
                return SslVerify{.mode = *b ? SslVerify::Mode::Default : SslVerify::Mode::Off};
            if (s == "truststore") return SslVerify{.mode = SslVerify::Mode::Truststore};
            if (s.empty()) fail(m.source, m.name, "expected true, false, truststore or a CA bundle path");
            return SslVerify{.mode = SslVerify::Mode::CaBundle, .ca_bundle = expand(s, env_)};
        });
        auto path_of = [&](const Match& m) { return stdfs::path(expand(scalar(m), env_)); };
        for (const Match* m : relevant(Key::ClientCert)) c.client_ssl_cert = Sourced<stdfs::path>{path_of(*m), m->source};
        for (const Match* m : relevant(Key::ClientCertKey))
            c.client_ssl_cert_key = Sourced<stdfs::path>{path_of(*m), m->source};
        if (c.client_ssl_cert_key && !c.client_ssl_cert)
            throw CondarcError(fmt::format("{}: key 'client_ssl_cert_key': set without client_ssl_cert",
                                           c.client_ssl_cert_key->source));
        merged_map(Key::ProxyServers, c.proxy_servers, [&](const Match& m) { return scalar(m); });
        last(Key::ConnectTimeout, c.remote_connect_timeout_secs, [&](const Match& m) { return to_number(m); });
        last(Key::ReadTimeout, c.remote_read_timeout_secs, [&](const Match& m) { return to_number(m); });
        last(Key::MaxRetries, c.remote_max_retries, [&](const Match& m) { return to_count(m); });
        last(Key::BackoffFactor, c.remote_backoff_factor, [&](const Match& m) { return to_number(m); });
        last(Key::Offline, c.offline, [&](const Match& m) { return to_bool(m); });
        last(Key::UseZst, c.repodata_use_zst, [&](const Match& m) { return to_bool(m); });

        c.pkgs_dirs = dir_list(Key::PkgsDirs, "pkgs");
        c.envs_dirs = dir_list(Key::EnvsDirs, "envs");

        Sourced<std::string> subdir{.value = env_.native_subdir};
        last(Key::Subdir, subdir, [&](const Match& m) { return scalar(m); });
        c.subdirs = {{subdir.value, "noarch"}, subdir.source};
        if (subdir.value == "noarch") c.subdirs.value.pop_back();
        Sourced<std::vector<std::string>> subdirs;
        last(Key::Subdirs, subdirs, [&](const Match& m) { return list(m); });
        if (!subdirs.value.empty()) c.subdirs = std::move(subdirs);
        return c;
    }

    const CondaEnvironment& env_;
    std::vector<std::unique_ptr<std::string>> texts_;
    std::vector<std::unique_ptr<Node>> trees_;
    std::vector<stdfs::path> files_;
    std::map<Key, std::vector<Match>> matches_;
};

// Subdirs conda knows (conda/base/constants.py KNOWN_SUBDIRS): a trailing one is not part of a channel.
constexpr std::array<std::string_view, 19> known_subdirs{
    "noarch",      "emscripten-wasm32", "freebsd-64",  "linux-32",    "linux-64",   "linux-aarch64", "linux-armv6l",
    "linux-armv7l", "linux-ppc64",      "linux-ppc64le", "linux-riscv64", "linux-s390x", "osx-64",    "osx-arm64",
    "wasi-wasm32", "win-32",            "win-64",      "win-arm64",   "zos-z"};

void strip_subdir(std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return;
    const std::string_view last = std::string_view(path).substr(slash + 1);
    if (std::find(known_subdirs.begin(), known_subdirs.end(), last) != known_subdirs.end()) path.erase(slash);
}

ResolvedChannel under(const Url& base, const std::string& name, std::string canonical) {
    Url u = base;
    u.path += "/" + name;
    return ResolvedChannel{.canonical_name = std::move(canonical),
                           .base_url = u.without_credentials(),
                           .base_url_with_credentials = u.with_credentials()};
}

bool is_path(std::string_view v) {
    return v.starts_with("/") || v.starts_with("./") || v.starts_with("../") || v == "~" || v.starts_with("~/") ||
           v == "." || v == "..";
}

std::vector<ResolvedChannel> resolve(const CondaConfig& c, std::string_view value, const stdfs::path& cwd, int depth);

std::vector<ResolvedChannel> multichannel(const CondaConfig& c, const std::vector<std::string>& members,
                                          const std::string& name, const stdfs::path& cwd, int depth) {
    std::vector<ResolvedChannel> out;
    for (const std::string& m : members)
        for (ResolvedChannel r : resolve(c, m, cwd, depth + 1)) {
            r.canonical_name = name;
            out.push_back(std::move(r));
        }
    return out;
}

std::vector<ResolvedChannel> resolve(const CondaConfig& c, std::string_view value, const stdfs::path& cwd, int depth) {
    std::string v = trim(value);
    while (v.size() > 1 && v.ends_with("/")) v.pop_back();
    if (v.empty() || v == "<unknown>") throw ConfigError("a channel must not be empty");
    if (depth > 2) throw ConfigError(fmt::format("channel {}: multichannels nested too deep", condaguard::quoted(redact_url(v))));
    const auto alias = parse_url(c.channel_alias.value);
    if (!alias) throw ConfigError(fmt::format("channel_alias {} is not a URL", condaguard::quoted(redact_url(c.channel_alias.value))));

    if (v.find("://") != std::string::npos) {
        auto u = parse_url(v);
        if (!u) throw ConfigError(fmt::format("channel {} is not a URL", condaguard::quoted(redact_url(v))));
        strip_subdir(u->path);
        const std::string plain = u->without_credentials();
        std::string canonical = plain;
        for (const auto& [name, url] : c.custom_channels)
            if (auto cu = parse_url(url.value); cu && plain == under(*cu, name, name).base_url) canonical = name;
        if (canonical == plain) {
            const auto defaults = c.custom_multichannels.count("defaults") ? c.custom_multichannels.at("defaults").value
                                                                            : c.default_channels.value;
            for (const std::string& d : defaults)
                if (auto du = parse_url(d); du && du->without_credentials() == plain) canonical = "defaults";
        }
        if (canonical == plain && u->scheme == alias->scheme && u->host == alias->host &&
            u->path.starts_with(alias->path + "/")) {
            canonical = u->path.substr(alias->path.size() + 1);
            if (!u->has_credentials()) {
                u->user_info = alias->user_info;
                u->token = alias->token;
            }
        }
        return {ResolvedChannel{.canonical_name = canonical, .base_url = plain, .base_url_with_credentials = u->with_credentials()}};
    }
    if (is_path(v)) {
        stdfs::path p = v.starts_with("~") ? c.home / v.substr(std::min<std::size_t>(v.size(), 2)) : stdfs::path(v);
        if (p.is_relative()) p = cwd / p;
        std::string s = p.lexically_normal().string();
        while (s.size() > 1 && s.ends_with("/")) s.pop_back();
        strip_subdir(s);
        const std::string url = "file://" + s;
        return {ResolvedChannel{.canonical_name = url, .base_url = url, .base_url_with_credentials = url}};
    }
    if (auto it = c.custom_multichannels.find(v); it != c.custom_multichannels.end())
        return multichannel(c, it->second.value, v, cwd, depth);
    if (v == "defaults") return multichannel(c, c.default_channels.value, v, cwd, depth);
    strip_subdir(v);
    // custom_channels: the longest prefix of whole segments.
    for (std::string prefix = v;;) {
        if (auto it = c.custom_channels.find(prefix); it != c.custom_channels.end()) {
            const auto cu = parse_url(it->second.value);
            if (!cu) throw ConfigError(fmt::format("custom channel {} is not a URL", condaguard::quoted(prefix)));
            return {under(*cu, v, v)};
        }
        const auto slash = prefix.rfind('/');
        if (slash == std::string::npos) break;
        prefix.erase(slash);
    }
    return {under(*alias, v, v)};
}

}  // namespace

std::vector<stdfs::path> condarc_search_path(const CondaEnvironment& env) {
    std::vector<stdfs::path> out;
    auto triple = [&](const stdfs::path& dir) {
        out.push_back(dir / ".condarc");
        out.push_back(dir / "condarc");
        out.push_back(dir / "condarc.d");
    };
    auto var = [&](const char* name) -> std::optional<std::string> {
        auto it = env.variables.find(name);
        if (it == env.variables.end() || it->second.empty()) return std::nullopt;
        return it->second;
    };
    triple("/etc/conda");
    triple("/var/lib/conda");
    if (auto root = var("CONDA_ROOT"))
        triple(*root);
    else if (!env.root_prefix.empty())
        triple(env.root_prefix);
    if (auto xdg = var("XDG_CONFIG_HOME")) triple(stdfs::path(*xdg) / "conda");
    triple(env.home / ".config" / "conda");
    triple(env.home / ".conda");
    out.push_back(env.home / ".condarc");
    if (env.target_prefix) triple(*env.target_prefix);
    if (auto rc = var("CONDARC")) out.push_back(expand(*rc, env));
    return out;
}

CondaConfig load_condarc(const CondaEnvironment& env) { return Loader(env).load(); }

std::vector<ResolvedChannel> resolve_channel(const CondaConfig& config, std::string_view value, const stdfs::path& cwd) {
    return resolve(config, value, cwd, 0);
}

}  // namespace condaguard
