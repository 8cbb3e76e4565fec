// conda's configuration, as conda reads it (spec §7): the .condarc search
// path, the CONDA_* environment overrides, list merging and #!final, and
// the keys the install gate needs to fetch from where conda would; and the
// resolution of a channel value to its URLs (spec §1.1).
//
// The library is given the environment as a value (CondaEnvironment) and
// never reads variables itself. Unknown keys are ignored (conda has hundreds);
// a key we use with a wrong type or value, a file that is not YAML, or a
// document that is not a mapping is a CondarcError naming FILE:LINE:COL.
// (conda skips an unparsable file with a warning; the gate refuses instead:
// a configuration it cannot read is not a configuration it can honour.)
#pragma once

#include <condaguard/config/source.hpp>

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

inline constexpr std::size_t max_condarc_bytes = std::size_t{1} << 20;
inline constexpr const char* default_channel_alias = "https://conda.anaconda.org";

class CondarcError : public ConfigError {
public:
    using ConfigError::ConfigError;
};

struct CondaEnvironment {
    std::filesystem::path home;
    // conda's installation (sys.prefix): $CONDA_ROOT unless that is set, and
    // the first default package directory (ROOT/pkgs). Empty: unknown.
    std::filesystem::path root_prefix;
    // The prefix being installed into (-n/-p): $CONDA_PREFIX in the search path.
    std::optional<std::filesystem::path> target_prefix;
    // The process environment (at least CONDARC, CONDA_ROOT, XDG_CONFIG_HOME,
    // every CONDA_* variable, and what ~ and $VAR in paths expand to).
    std::map<std::string, std::string> variables;
    std::string native_subdir = "linux-64";
};

// ssl_verify (verify_ssl): true | false | "truststore" | a CA bundle path.
struct SslVerify {
    enum class Mode { Default, Off, Truststore, CaBundle };
    Mode mode = Mode::Default;
    std::filesystem::path ca_bundle;  // Mode::CaBundle
};

struct CondaConfig {
    std::filesystem::path home;
    std::vector<std::filesystem::path> files;  // read, lowest precedence first

    // Lists: merged over every source, higher precedence first, without
    // duplicates; source names the highest-precedence contributor.
    Sourced<std::vector<std::string>> channels;
    Sourced<std::vector<std::string>> default_channels{
        .value = {"https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r"}};
    Sourced<std::string> channel_alias{.value = default_channel_alias};
    // Maps: merged by key, the higher precedence winning.
    std::map<std::string, Sourced<std::string>> custom_channels{
        {"pkgs/pro", Sourced<std::string>{.value = "https://repo.anaconda.com"}}};
    std::map<std::string, Sourced<std::vector<std::string>>> custom_multichannels;
    Sourced<SslVerify> ssl_verify;
    std::optional<Sourced<std::filesystem::path>> client_ssl_cert;      // client_cert
    std::optional<Sourced<std::filesystem::path>> client_ssl_cert_key;  // client_cert_key
    std::map<std::string, Sourced<std::string>> proxy_servers;          // "https" or "https://host" -> proxy URL
    Sourced<double> remote_connect_timeout_secs{.value = 9.15};
    Sourced<double> remote_read_timeout_secs{.value = 60.0};
    Sourced<unsigned> remote_max_retries{.value = 3};
    Sourced<double> remote_backoff_factor{.value = 1.0};
    Sourced<std::vector<std::filesystem::path>> pkgs_dirs;  // default: ROOT/pkgs, ~/.conda/pkgs
    // envs_dirs (envs_path; CONDA_ENVS_DIRS / CONDA_ENVS_PATH split on ':'),
    // where -n NAME is looked up. Default: ROOT/envs, ~/.conda/envs.
    Sourced<std::vector<std::filesystem::path>> envs_dirs;
    Sourced<bool> offline{.value = false};
    Sourced<bool> repodata_use_zst{.value = true};
    Sourced<std::vector<std::string>> subdirs;  // default: (subdir, noarch); subdir defaults to the native one
};

// The candidates of spec §7.1 in order (lowest precedence first), before
// directories are listed and missing files dropped; unset variables drop
// their entries.
std::vector<std::filesystem::path> condarc_search_path(const CondaEnvironment& env);

// Reads every file of the search path that exists (a regular file named
// .condarc, condarc, *.yml or *.yaml; a directory's *.yml and *.yaml files
// in name order; links are followed, as conda does), then the environment's
// CONDA_* overrides. Throws CondarcError.
CondaConfig load_condarc(const CondaEnvironment& env);

// One channel as conda resolves it.
struct ResolvedChannel {
    std::string canonical_name;             // conda-forge, defaults, pkgs/pro, or the base URL
    std::string base_url;                   // scheme://host/path: no credentials, no token, no subdir
    std::string base_url_with_credentials;  // with user:pass@ and /t/TOKEN: never printed
};

// A channel value (a URL, a path starting with /, ./, ../ or ~, `defaults`,
// a multichannel, a custom channel or a name under channel_alias); several
// for a multichannel. Relative paths are taken from `cwd`. Throws
// ConfigError for an empty value.
std::vector<ResolvedChannel> resolve_channel(const CondaConfig& config, std::string_view value,
                                             const std::filesystem::path& cwd);

}  // namespace condaguard
