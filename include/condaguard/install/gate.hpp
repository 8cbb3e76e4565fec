// The install gate (conda-guard fetch): the client steps of the trust model
// for packages named by URL, ending in conda's package cache.
//
// Policy, per package, in order; the first failure gives its verdict and
// nothing of that package reaches a package directory:
//  1. The channel's signed index (SUBDIR/repodata.json and its .sig, fetched
//     with validators into a private cache and verified again on every use)
//     is authentic, for the expected channel, not expired, not rolled back
//     (channel/verify.hpp). An unsigned index is refused when the policy
//     requires a signed one or the channel was seen signed before (a
//     downgrade); otherwise it is read, unauthenticated, and each package
//     stands on its own signature and identity (steps 4 and 5).
//  2. The package's record is in that index; a "#sha256"/"#md5" given with
//     the URL agrees with it; the policy's min_age holds (on a signed
//     record only).
//  3. Its bytes: a copy already in a package directory is copied into a
//     private file while it is hashed again, and otherwise the download is
//     hashed in flight and capped at the record's size; size and sha256 must
//     equal the record's.
//  4. FILE.sig (fetched from the package's origin, 4 KiB cap, for a cached
//     copy too: a FN.sig found in a package directory may be another
//     channel's, and is never used) names a key that is not revoked, is
//     allowed for the channel, and verifies on the digest already computed.
//  5. The same open file is extracted (package/extract.hpp) into a staging
//     folder inside the package directory; its info/index.json must name the
//     record's package; the policy's link_scripts rule holds.
//  6. All or nothing: only when every package of the run passed steps 1
//     to 5 (and GateOptions::refused_elsewhere is 0) is anything placed or
//     moved; otherwise each package that passed keeps its verdict (VALID,
//     or UNVERIFIED) with no folder, its reason ending "verified, not
//     placed: N other package(s) of this run was/were refused", and no
//     package directory changes (but for the gate's own
//     PKGS/.condaguard/lock and empty staging/). Then every other
//     top-level folder that claims a package of the run (its info/ names
//     it, or cannot be read as naming another: a planted sibling, a
//     leftover), in EVERY package directory of pkgs_dirs, is moved out of
//     the top level into that directory's PKGS/.condaguard/staging/ (under
//     that directory's lock) and deleted without following a link; all of
//     them or none. Only then are tarball, .sig and folder (with
//     info/repodata_record.json) renamed into place and the URL appended to
//     urls.txt; the package directories are searched once more afterwards.
//     A claimant that cannot be moved (its directory read-only, not ours,
//     locked by another run past the wait; or .condaguard itself) refuses
//     the package (ERROR), the claimants of the packages before it are put
//     back, and nothing is placed. An I/O error while placing refuses that
//     package (ERROR); those placed before it stay (each one whole), the
//     rest are not placed.
//
// Unsigned by policy (ChannelTrust::unsigned_by_policy, the rule
// "signatures: none"): no .sig is fetched for the channel's index or
// packages. Step 1 reads the index unauthenticated (read_unsigned_index's
// caps), but refuses it (MISSING_SIG) when the channel was seen signed at
// that location: a downgrade, which only "conda-guard state reset" forgets.
// Step 4 is skipped; steps 2, 3, 5 and 6 are as above (size and sha256
// against the unsigned record, identity, extraction, placing, claimants),
// and the package's verdict is UNVERIFIED, its reason naming the rule. The
// index's verdict is UNVERIFIED too. Without that rule a channel that signs
// nothing is refused (MISSING_SIG), whatever the server sends (A1).
//
// A dry run (GateOptions::dry_run) stops after step 2: the indexes are
// fetched and verified and each record is judged, but no package or .sig is
// fetched and no package directory is opened, created, locked or written.
#pragma once

#include <condaguard/channel/verify.hpp>
#include <condaguard/fetch/fetcher.hpp>
#include <condaguard/install/explicit.hpp>
#include <condaguard/sys/env.hpp>
#include <condaguard/trust/verdict.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

// What the local policy says about one channel.
struct ChannelTrust {
    std::vector<std::string> allowed_keys;  // names or "sha256:HEX"; empty: any key in the keys directory
    // An unsigned index is refused. Otherwise (the trust model's default) it
    // is accepted while the channel was never seen signed: its records are
    // then not authenticated, and each package stands on its own signature.
    bool index_required = false;
    std::optional<std::string> channel_id;  // expected info.guard.channel
    // Set when the policy allows the channel unsigned (signatures: none; then
    // allowed_keys and channel_id are empty and index_required false): see
    // "Unsigned by policy" above.
    struct Unsigned {
        std::string rule;    // the policy rule's match (conda-forge, https://host/path)
        std::string source;  // where it says so (FILE:LINE:COL)
    };
    std::optional<Unsigned> unsigned_by_policy;
};

struct Revocation {
    std::string reason;
    std::string date;
};

// The policy's key rules, as the gate and the audit apply them to a signature.
//
// The BAD_KEY reason when `revoked` lists the key `fingerprint` (the key
// named `key`), else none.
std::optional<std::string> revoked_key_reason(
    const std::function<std::optional<Revocation>(const std::string& fingerprint)>& revoked, std::string_view key,
    const std::string& fingerprint);
// A VALID result by a key that `trust` does not allow (neither its name nor
// "sha256:FINGERPRINT" in allowed_keys, when that is not empty) becomes
// UNTRUSTED_KEY; its reason names `channel` ("this channel" when empty).
void apply_allowed_keys(Result& r, const ChannelTrust& trust, std::string_view channel = {});

struct GateOptions {
    // conda's package directories in its order; packages are placed in the
    // first one (created when missing), the others are searched.
    std::vector<std::filesystem::path> pkgs_dirs;
    std::filesystem::path index_cache;  // private: fetched indexes and their validators
    TransportOptions transport;
    // The policy, looked up by channel URL (without credentials).
    std::function<ChannelTrust(const std::string& channel_url)> trust_for;
    std::function<std::optional<Revocation>(const std::string& fingerprint)> revoked;
    unsigned min_rsa_bits = default_min_rsa_bits;
    std::uint64_t max_index_bytes = default_max_index_bytes;
    std::optional<std::chrono::seconds> max_index_age;  // since info.guard.signed_at
    std::optional<std::chrono::seconds> min_age;        // since the record's timestamp
    bool refuse_link_scripts = false;
    unsigned jobs = 0;  // extraction threads (0: one per core)
    // Called once every package of the run is placed, before the package
    // directories are scanned again for claimants (tests plant one here).
    std::function<void()> after_placing;
    // Steps 1 and 2 only (what needs no package download: the index, the
    // record and its hashes, min_age, the index key's revocation). A package
    // that passes them is VALID with dry_run_reason (or, from an unsigned
    // index, dry_run_unsigned_reason), or UNVERIFIED when its channel is
    // unsigned by policy; pkgs_dirs is not touched and may be empty.
    bool dry_run = false;
    // Packages of the same request that the caller refused before the gate
    // (conda-guard gate refuses a record that disagrees with its URL): with
    // any, nothing is placed, as when the gate refuses one itself.
    std::size_t refused_elsewhere = 0;
};

inline constexpr const char* dry_run_reason =
    "dry run: record verified in the signed index; the package itself was not fetched";
inline constexpr const char* dry_run_unsigned_reason =
    "dry run: record found in an unsigned index the policy allows (not authenticated); the package itself "
    "was not fetched";

struct GateProgress {
    std::uint64_t bytes_done = 0, bytes_expected = 0;
    std::size_t packages_done = 0, packages_total = 0;
};

struct GateReport {
    std::vector<Result> indexes;   // one per channel subdir, by URL (credentials removed)
    std::vector<Result> packages;  // in request order; path = the package URL without credentials
    std::vector<std::string> placed;  // the folders placed or proven, for VALID and UNVERIFIED packages
    // Per package, in request order: the folder placed or proven when VALID
    // or UNVERIFIED (never in a dry run), else none.
    std::vector<std::optional<std::string>> folders;
    // Per package, in request order: the folders (full paths, in any package
    // directory) that claimed it and were moved out of the top level and
    // deleted; empty when none (and in a dry run). The folder at the placed
    // name itself, which placing replaces, is not listed.
    std::vector<std::vector<std::string>> cleaned;
    // Per package, in request order: for an UNVERIFIED package, the policy
    // rule that allows its channel unsigned (ChannelTrust::Unsigned::rule).
    std::vector<std::optional<std::string>> unverified_by;
};

// Runs the gate for `packages` under `env` (clock, keys, state). Never
// throws for a package's fault: each becomes its Result. Throws for what
// stops the whole run (the first package directory that cannot be opened or
// locked; no package directory, unless a dry run). The other package
// directories are locked only when one holds a claimant to move, and then
// until the run ends; one that cannot be is the package's ERROR.
GateReport run_gate(const std::vector<PackageUrl>& packages, const GateOptions& options, const Environment& env,
                    const std::function<void(const GateProgress&)>& progress = {});

}  // namespace condaguard
