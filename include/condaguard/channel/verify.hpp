// Offline verification of a signed channel (conda-guard verify-channel).
//
// Policy, per subdir, in order; the first failure gives the verdict:
//  1. SUBDIR/repodata.json.sig exists (MISSING_SIG; when this location or
//     channel was seen signed before, the message says it is a downgrade),
//     parses (BAD_SIG_FILE), names a present, usable key (MISSING_KEY,
//     BAD_KEY), verifies on the raw bytes of repodata.json (INVALID), by an
//     allowed key (UNTRUSTED_KEY).
//  2. info.guard is well formed, names this subdir and the expected channel,
//     this location has not served another channel (INVALID), has not
//     expired (EXPIRED), and its version is not below the highest seen
//     (ROLLBACK; a different index under the same version is INVALID).
//  3. Only then are the records read, and each package is checked against
//     its record (size, sha256, md5 when present: INVALID), its own
//     info/index.json against the record and file name (INVALID), and its
//     own FILE.sig as conda-sign --verify does. A record without sha256 is
//     INVALID (md5-only records are refused).
#pragma once

#include <condaguard/channel/guard.hpp>
#include <condaguard/channel/state.hpp>
#include <condaguard/trust/verifier.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

inline constexpr std::uint64_t default_max_index_bytes = std::uint64_t{1} << 30;
// A signed index is parsed in pieces of about this many bytes (cut between two
// records of "packages" or "packages.conda"), on several threads while it is
// still being read; see SegmentedParse in verify.cpp.
inline constexpr std::size_t default_index_segment_bytes = std::size_t{1} << 20;

struct ChannelPolicy {
    std::optional<std::string> channel_id;  // expected info.guard.channel
    bool allow_expired = false;
    bool index_only = false;  // authenticate the indexes, skip the packages
    std::uint64_t max_index_bytes = default_max_index_bytes;
    TimePoint now{};
    unsigned jobs = 0;  // threads for packages, and (at most 4) for parsing an index; 0: one per core
    std::size_t index_segment_bytes = default_index_segment_bytes;  // at least 1
};

// One package record of a verified index; views into the index's bytes (a
// string with escapes is a view of its unescaped copy, kept with the index).
struct IndexRecord {
    std::string_view fn, name, version, build, subdir, sha256, md5;
    // The record's whole JSON object, from its '{' to its '}', exactly as it
    // is in the signed bytes: parse it (sys/json.hpp) for the other fields.
    std::string_view raw;
    std::uint64_t size = 0;
    // "timestamp" as given when it is a non-negative integer (conda: above
    // 253402300799 it counts milliseconds, else seconds); any other value is
    // checked as JSON only and leaves has_timestamp false.
    std::uint64_t timestamp = 0;
    bool has_size = false;
    bool has_timestamp = false;
};

struct IndexData;  // the bytes and parser the records point into

struct VerifiedIndex {
    Result result;  // the repodata.json line
    std::optional<Guard> guard;
    std::shared_ptr<const IndexData> data;
    std::span<const IndexRecord> records() const;
    // How many segments the index was walked in (1: in one walk, as a small
    // index, or again whole when the segments did not prove it valid); 0
    // when not parsed.
    std::size_t parse_segments() const;
};

// Authenticates and parses SUBDIR/repodata.json. On VALID, records the
// index in `state` under `location` (where the channel was found).
VerifiedIndex verify_index(const std::filesystem::path& subdir_dir, const std::string& subdir,
                           const std::string& location, Verifier& verifier, StateStore& state,
                           const ChannelPolicy& policy);

// Parses SUBDIR/repodata.json of a channel that does not sign its index
// (no repodata.json.sig; one is an ERROR here: verify it instead), under
// the same size, depth and duplicate-key caps. Nothing is authenticated: the
// caller decides that its policy allows an unsigned index for this channel
// (never when the channel was seen signed: verify_index refuses that
// downgrade), and trusts each package only on its own signature. VALID means
// "parsed", and the reason says it is unsigned.
VerifiedIndex read_unsigned_index(const std::filesystem::path& subdir_dir, const std::string& subdir,
                                  const ChannelPolicy& policy);

// What verify_channel found in one subdir: the index's finding, then one per
// package, sorted by file name (none when the index failed or index_only).
struct SubdirFindings {
    std::string subdir;
    Result index;
    std::vector<Result> packages;
};

struct ChannelReport {
    std::vector<SubdirFindings> subdirs;  // sorted by name
    // Every finding in order: per subdir, the index, then its packages.
    std::vector<Result> all() const;
};

// Every subdir of `channel` with a repodata.json: its index, then its packages.
ChannelReport verify_channel(const std::filesystem::path& channel, Verifier& verifier, StateStore& state,
                                   const ChannelPolicy& policy);

}  // namespace condaguard
