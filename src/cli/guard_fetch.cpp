// conda-guard fetch: the install gate for packages named by URL or by an
// explicit file, into conda's package cache.
#include <condaguard/config/condarc.hpp>
#include <condaguard/config/policy.hpp>
#include <condaguard/sys/url.hpp>
#include <condaguard/install/gate.hpp>
#include <condaguard/install/pkgs_dir.hpp>

#include "guard.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unistd.h>

namespace condaguard::cli {

namespace {

struct FetchArgs {
    std::vector<std::string> urls;
    std::string file;
    std::string pkgs_dir;
    std::string policy;
    std::string keys_dir;
    std::string state_dir;
    unsigned jobs = 0;
};

// conda's prefix (sys.prefix): $CONDA_ROOT, else two levels above $CONDA_EXE (PREFIX/bin/conda).
std::filesystem::path root_prefix(const std::map<std::string, std::string>& vars) {
    if (auto it = vars.find("CONDA_ROOT"); it != vars.end() && !it->second.empty()) return it->second;
    if (auto it = vars.find("CONDA_EXE"); it != vars.end() && !it->second.empty())
        return std::filesystem::path(it->second).parent_path().parent_path();
    return {};
}

// conda's package directories in order, the one packages land in first:
// --pkgs-dir alone, or the first of pkgs_dirs that is writable or can be made.
std::vector<std::filesystem::path> package_dirs(const FetchArgs& a, const CondaConfig& conda) {
    if (!a.pkgs_dir.empty()) return {a.pkgs_dir};
    std::vector<std::filesystem::path> dirs = conda.pkgs_dirs.value;
    if (dirs.empty()) throw CommandError(2, "no package directory: set pkgs_dirs in .condarc or use --pkgs-dir");
    auto usable = [](const std::filesystem::path& d) {
        std::error_code ec;
        if (std::filesystem::is_directory(d, ec)) return ::access(d.c_str(), W_OK) == 0;
        std::filesystem::path p = d;
        while (!p.empty() && !std::filesystem::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
        return !p.empty() && ::access(p.c_str(), W_OK) == 0;
    };
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        if (!usable(dirs[i])) continue;
        std::rotate(dirs.begin(), dirs.begin() + static_cast<std::ptrdiff_t>(i), dirs.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        return dirs;
    }
    std::vector<std::string> names;
    for (const auto& d : dirs) names.push_back(d.string());
    throw CommandError(2, fmt::format("no writable package directory among pkgs_dirs ({})", fmt::join(names, ", ")));
}

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

int run_fetch(const FetchArgs& a, const Reporter& out) {
    if (a.urls.empty() == a.file.empty()) throw CommandError(2, "give package URLs or --file EXPLICIT_FILE (not both)");
    const Environment env = read_environment({.keys_dir = a.keys_dir, .state_dir = a.state_dir});
    const auto vars = read_variables();
    const std::filesystem::path cwd = std::filesystem::current_path();
    Policy policy;
    CondaConfig conda;
    std::vector<PackageUrl> packages;
    try {
        policy = load_policy(a.policy.empty() ? default_policy_sources(env.home)
                                              : PolicySources{.files = {a.policy}, .explicit_file = true});
        conda = load_condarc(CondaEnvironment{.home = env.home, .root_prefix = root_prefix(vars), .variables = vars});
        if (!a.file.empty()) {
            packages = read_explicit_file(a.file, cwd);
        } else {
            for (const auto& u : a.urls) packages.push_back(parse_package_url(u, cwd));
        }
    } catch (const ConfigError& e) {
        throw CommandError(2, e.what());
    } catch (const ExplicitError& e) {
        throw CommandError(2, fmt::format("{}: {}", a.file.empty() ? "argument" : a.file, e.what()));
    }
    if (policy.weak_rsa_allowed())
        out.warning(fmt::format("the policy accepts RSA keys of {} bits ({}; the safe minimum is {})",
                                policy.min_rsa_bits.value, policy.min_rsa_bits.source, default_min_rsa_bits));
    if (conda.offline.value)
        for (const auto& p : packages)
            if (!p.url.starts_with("file://"))
                throw CommandError(2, fmt::format("offline is set ({}): cannot fetch {}", conda.offline.source,
                                                  redact_url(p.url)));

    GateOptions o{.pkgs_dirs = package_dirs(a, conda),
                  .index_cache = env.state_dir / "index-cache",
                  .transport = transport(conda, policy, out)};
    o.trust_for = [&](const std::string& channel_url) {
        std::string canonical = channel_url;
        try {
            const auto resolved = resolve_channel(conda, channel_url, cwd);
            if (!resolved.empty()) canonical = resolved.front().canonical_name;
        } catch (const ConfigError&) {
        }
        ChannelTrust t;
        if (const ChannelRule* rule = policy.rule_for(canonical, channel_url)) {
            if (rule->keys) {
                t.allowed_keys = rule->keys->value.names;
                for (const auto& fp : rule->keys->value.fingerprints) t.allowed_keys.push_back("sha256:" + fp);
            }
            if (rule->channel_id) t.channel_id = rule->channel_id->value;
            t.index_required = rule->index.value == IndexRule::Required;
        }
        return t;
    };
    o.revoked = [&](const std::string& fp) -> std::optional<Revocation> {
        if (const RevokedKey* k = policy.revoked(fp)) return Revocation{.reason = k->reason, .date = k->date};
        return std::nullopt;
    };
    o.min_rsa_bits = policy.min_rsa_bits.value;
    o.max_index_bytes = policy.max_index_bytes.value;
    if (policy.max_index_age) o.max_index_age = policy.max_index_age->value;
    if (policy.min_age) o.min_age = policy.min_age->value;
    o.refuse_link_scripts = policy.link_scripts.value == LinkScripts::Refuse;
    o.jobs = a.jobs;

    ProgressLine line(out);
    GateReport report;
    try {
        report = run_gate(packages, o, env, [&](const GateProgress& p) { line.show(p); });
    } catch (const PackageDirBusy& e) {
        throw CommandError(2, e.what());
    }
    return out.gate(report);
}

}  // namespace

void add_fetch_command(GuardApp& g) {
    auto a = std::make_shared<FetchArgs>();
    CLI::App* sub = g.add("fetch",
                          "The install gate: fetch, verify and place packages in conda's package cache; nothing "
                          "unverified is placed",
                          [a, &g] { return run_fetch(*a, g.out); });
    sub->add_option("URL", a->urls,
                    "Package URLs or paths (CHANNEL/SUBDIR/FILE[#sha256]), as in an explicit file")
        ->type_name("URL");
    sub->add_option("--file", a->file, "Packages from an explicit file (@EXPLICIT, as conda list --explicit writes)")
        ->type_name("EXPLICIT_FILE");
    sub->add_option("--pkgs-dir", a->pkgs_dir,
                    "Place packages here (default: the first writable of conda's pkgs_dirs, the others searched)")
        ->type_name("DIR");
    sub->add_option("--policy", a->policy, "Read the policy from FILE only (default: /etc/conda/guard.yaml, then "
                                           "~/.conda/guard.yaml)")
        ->type_name("FILE");
    sub->add_option("--keys-dir", a->keys_dir, "Keys directory (default: $CONDA_KEYS_DIR, else ~/.conda/keys)")
        ->type_name("DIR");
    sub->add_option("--state-dir", a->state_dir,
                    "Where index versions seen and fetched indexes are kept (default: $CONDA_GUARD_STATE_DIR, else "
                    "~/.conda/guard)")
        ->type_name("DIR");
    add_jobs_option(*sub, a->jobs);
    add_output_flags(*sub, g.out);
}

}  // namespace condaguard::cli
