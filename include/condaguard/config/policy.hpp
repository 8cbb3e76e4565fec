// The local policy: which keys each channel may be signed with, whether its
// index must be signed, and the global rules (key floor, revocations, index
// age and size, parallel transfers, package cooldown, link scripts). Read
// from YAML files (/etc/conda/guard.yaml, then ~/.conda/guard.yaml, or one
// --policy FILE); with no file, the trust model's defaults. The schema is
// documented in conda-guard-policy(5).
//
// Each file is opened inside its directory (sys/secure_dir: the directory
// and its ancestors owned by the user or root and not writable by others),
// with O_NOFOLLOW, must be a regular file owned by the user or root, not
// writable by group or others, and at most max_policy_file_bytes. Anchors,
// aliases and duplicate keys are refused. Every fault is a PolicyError naming
// FILE:LINE:COL and the key.
#pragma once

#include <condaguard/config/source.hpp>
#include <condaguard/sys/time.hpp>
#include <condaguard/trust/keys.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

inline constexpr std::size_t max_policy_file_bytes = std::size_t{1} << 20;
// As channel::default_max_index_bytes (a test holds them equal).
inline constexpr std::uint64_t default_policy_max_index_bytes = std::uint64_t{1} << 30;
inline constexpr unsigned default_parallel_transfers = 4;
inline constexpr unsigned max_parallel_transfers = 64;
// The lowest min_rsa_bits a policy may set (as --min-key-bits).
inline constexpr unsigned lowest_min_rsa_bits = 1024;

class PolicyError : public ConfigError {
public:
    using ConfigError::ConfigError;
};

// index: required | if-signed
enum class IndexRule {
    IfSigned,  // verified when present, required once the channel was seen signed (the trust model)
    Required,  // an unsigned index is refused
};
std::string_view to_string(IndexRule r) noexcept;

// signatures: required | none
enum class SignatureRule {
    Required,  // every package (and, per IndexRule, the index) is signed (the trust model)
    // The channel is allowed unsigned: no .sig is fetched, nothing is
    // authenticated, each package is hashed against its index record, checked
    // for its identity, placed, and reported UNVERIFIED. Only on a rule without
    // keys, channel_id or index: required.
    None,
};
std::string_view to_string(SignatureRule r) noexcept;

// link_scripts: allow | refuse
enum class LinkScripts { Allow, Refuse };
std::string_view to_string(LinkScripts l) noexcept;

struct RevokedKey {
    std::string fingerprint;  // 64 lowercase hex digits (SHA-256 of the SPKI DER)
    std::string reason;
    std::string date;  // as written: YYYY-MM-DD or an RFC 3339 UTC time
    std::string source;
};

// The keys a channel may be signed with: by name (the .sig's key name, a
// file in the keys directory) or by fingerprint.
struct AllowedKeys {
    std::vector<std::string> names;
    std::vector<std::string> fingerprints;  // 64 lowercase hex digits

    bool allows(std::string_view key_name, std::string_view fingerprint) const;
};

struct ChannelRule {
    // A canonical channel name (conda-forge, defaults, pkgs/pro), or a URL
    // prefix (scheme://host/path, no credentials, no trailing '/'), matched
    // on path-segment boundaries.
    std::string match;
    std::string source;                        // where the rule was (last) given
    std::optional<Sourced<AllowedKeys>> keys;  // unset: any key in the keys directory
    Sourced<IndexRule> index{.value = IndexRule::IfSigned};
    std::optional<Sourced<std::string>> channel_id;  // expected info.guard.channel
    Sourced<SignatureRule> signatures{.value = SignatureRule::Required};

    bool is_url_prefix() const noexcept { return match.find("://") != std::string::npos; }
};

struct Policy {
    Sourced<unsigned> min_rsa_bits{.value = default_min_rsa_bits};
    std::vector<RevokedKey> revoked_keys;
    std::optional<Sourced<Seconds>> max_index_age;  // unset: no limit but the index's own expiry
    Sourced<std::uint64_t> max_index_bytes{.value = default_policy_max_index_bytes};
    Sourced<unsigned> parallel{.value = default_parallel_transfers};
    std::optional<Sourced<Seconds>> min_age;  // unset: off
    Sourced<LinkScripts> link_scripts{.value = LinkScripts::Allow};
    std::vector<ChannelRule> channels;  // in the order first given

    // The rule for a channel: a rule naming `canonical_name` exactly wins;
    // else the longest URL prefix of `url_without_credentials` (compared on
    // path-segment boundaries, scheme and host without regard to case);
    // else nullptr (the defaults apply).
    const ChannelRule* rule_for(std::string_view canonical_name, std::string_view url_without_credentials) const;
    // The revocation of `fingerprint` (64 hex digits, any case), or nullptr.
    const RevokedKey* revoked(std::string_view fingerprint) const;
    // min_rsa_bits below default_min_rsa_bits: the CLI warns on every run.
    bool weak_rsa_allowed() const noexcept { return min_rsa_bits.value < default_min_rsa_bits; }
    KeyPolicy key_policy() const noexcept { return KeyPolicy{.min_rsa_bits = min_rsa_bits.value}; }
};

// The files to read, in order (later ones override earlier ones key by key;
// channel rules are merged by their match string, revocations by fingerprint).
struct PolicySources {
    std::vector<std::filesystem::path> files;
    // true: files holds one --policy FILE, which must exist. false: the
    // default files, each skipped when missing.
    bool explicit_file = false;
};

// /etc/conda/guard.yaml, then HOME/.conda/guard.yaml.
PolicySources default_policy_sources(const std::filesystem::path& home);

// Throws PolicyError (naming FILE:LINE:COL and the key, or FILE and why it
// cannot be used).
Policy load_policy(const PolicySources& sources);
// The policy of one file's text (no file checks); `file` names it in errors.
// Applied over `base`.
Policy parse_policy(std::string_view text, const std::string& file, Policy base = {});

}  // namespace condaguard
