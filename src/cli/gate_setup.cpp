#include "gate_setup.hpp"

#include <condaguard/sys/url.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <unistd.h>

namespace condaguard::cli {

std::filesystem::path root_prefix(const std::map<std::string, std::string>& vars) {
    if (auto it = vars.find("CONDA_ROOT"); it != vars.end() && !it->second.empty()) return it->second;
    if (auto it = vars.find("CONDA_EXE"); it != vars.end() && !it->second.empty())
        return std::filesystem::path(it->second).parent_path().parent_path();
    return {};
}

namespace {

TransportOptions transport(const CondaConfig& conda, const Policy& policy, const Reporter& out) {
    TransportOptions t;
    switch (conda.ssl_verify.value.mode) {
    case SslVerify::Mode::Off:
        t.verify_tls = false;
        out.warning(fmt::format("ssl_verify is false ({}): TLS certificates are not checked; packages and indexes "
                                "are still verified by their signatures",
                                conda.ssl_verify.source));
        break;
    case SslVerify::Mode::CaBundle: t.ca_bundle = conda.ssl_verify.value.ca_bundle; break;
    case SslVerify::Mode::Default:
    case SslVerify::Mode::Truststore: break;
    }
    if (conda.client_ssl_cert) t.client_cert = conda.client_ssl_cert->value;
    if (conda.client_ssl_cert_key) t.client_key = conda.client_ssl_cert_key->value;
    for (const auto& [k, v] : conda.proxy_servers) t.proxies[k] = v.value;
    t.connect_timeout = std::chrono::milliseconds(static_cast<long>(conda.remote_connect_timeout_secs.value * 1000));
    t.low_speed_time = std::chrono::seconds(std::max(1L, static_cast<long>(conda.remote_read_timeout_secs.value)));
    t.max_retries = conda.remote_max_retries.value;
    t.backoff = std::chrono::milliseconds(static_cast<long>(conda.remote_backoff_factor.value * 1000));
    t.parallel = policy.parallel.value;
    return t;
}

}  // namespace

void GateSetupOptions::add_to(CLI::App& app) {
    app.add_option("--policy", policy,
                   "Read the policy from FILE only (default: /etc/conda/guard.yaml, then ~/.conda/guard.yaml)")
        ->type_name("FILE");
    app.add_option("--keys-dir", keys_dir, "Keys directory (default: $CONDA_KEYS_DIR, else ~/.conda/keys)")
        ->type_name("DIR");
    app.add_option("--state-dir", state_dir,
                   "Where index versions seen and fetched indexes are kept (default: $CONDA_GUARD_STATE_DIR, else "
                   "~/.conda/guard)")
        ->type_name("DIR");
}

GateSetup load_gate_setup(const GateSetupOptions& options, const Reporter& out) {
    const std::string& policy_file = options.policy;
    GateSetup s;
    s.env = read_environment({.keys_dir = options.keys_dir, .state_dir = options.state_dir});
    s.cwd = std::filesystem::current_path();
    const auto vars = read_variables();
    try {
        s.policy = load_policy(policy_file.empty() ? default_policy_sources(s.env.home)
                                                   : PolicySources{.files = {policy_file}, .explicit_file = true});
        s.conda = load_condarc(CondaEnvironment{.home = s.env.home, .root_prefix = root_prefix(vars), .variables = vars});
    } catch (const ConfigError& e) {
        throw CommandError(2, e.what());
    }
    if (s.policy.weak_rsa_allowed())
        out.warning(fmt::format("the policy accepts RSA keys of {} bits ({}; the safe minimum is {})",
                                s.policy.min_rsa_bits.value, s.policy.min_rsa_bits.source, default_min_rsa_bits));
    return s;
}

std::vector<std::filesystem::path> writable_first(std::vector<std::filesystem::path> dirs) {
    auto usable = [](const std::filesystem::path& d) {
        std::error_code ec;
        if (std::filesystem::is_directory(d, ec)) return ::access(d.c_str(), W_OK) == 0;
        std::filesystem::path p = d;
        while (!p.empty() && !std::filesystem::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
        // A directory can be made only below a directory (root passes access() on a file too).
        return !p.empty() && std::filesystem::is_directory(p, ec) && ::access(p.c_str(), W_OK) == 0;
    };
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        if (!usable(dirs[i])) continue;
        std::rotate(dirs.begin(), dirs.begin() + static_cast<std::ptrdiff_t>(i),
                    dirs.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        return dirs;
    }
    std::vector<std::string> names;
    for (const auto& d : dirs) names.push_back(d.string());
    throw CommandError(2, fmt::format("no writable package directory among pkgs_dirs ({})", fmt::join(names, ", ")));
}

void refuse_remote_when_offline(const CondaConfig& conda, const std::vector<PackageUrl>& packages) {
    if (!conda.offline.value) return;
    for (const auto& p : packages)
        if (!p.url.starts_with("file://"))
            throw CommandError(2, fmt::format("offline is set ({}): cannot fetch {}", conda.offline.source,
                                              redact_url(p.url)));
}

GateOptions gate_options(const GateSetup& s, const Reporter& out) {
    GateOptions o{.index_cache = s.env.state_dir / "index-cache", .transport = transport(s.conda, s.policy, out)};
    o.trust_for = [&s](const std::string& channel_url) {
        std::string canonical = channel_url;
        try {
            const auto resolved = resolve_channel(s.conda, channel_url, s.cwd);
            if (!resolved.empty()) canonical = resolved.front().canonical_name;
        } catch (const ConfigError&) {
        }
        ChannelTrust t;
        if (const ChannelRule* rule = s.policy.rule_for(canonical, channel_url)) {
            if (rule->keys) {
                t.allowed_keys = rule->keys->value.names;
                for (const auto& fp : rule->keys->value.fingerprints) t.allowed_keys.push_back("sha256:" + fp);
            }
            if (rule->channel_id) t.channel_id = rule->channel_id->value;
            t.index_required = rule->index.value == IndexRule::Required;
            if (rule->signatures.value == SignatureRule::None)
                t.unsigned_by_policy = ChannelTrust::Unsigned{.rule = rule->match, .source = rule->signatures.source};
        }
        return t;
    };
    o.revoked = [&s](const std::string& fp) -> std::optional<Revocation> {
        if (const RevokedKey* k = s.policy.revoked(fp)) return Revocation{.reason = k->reason, .date = k->date};
        return std::nullopt;
    };
    o.min_rsa_bits = s.policy.min_rsa_bits.value;
    o.max_index_bytes = s.policy.max_index_bytes.value;
    if (s.policy.max_index_age) o.max_index_age = s.policy.max_index_age->value;
    if (s.policy.min_age) o.min_age = s.policy.min_age->value;
    o.refuse_link_scripts = s.policy.link_scripts.value == LinkScripts::Refuse;
    return o;
}

}  // namespace condaguard::cli
