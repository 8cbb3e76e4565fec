// conda-guard index: turns a folder of packages into a channel conda installs
// from, optionally signed: SUBDIR/repodata.json (+ info.guard) and
// SUBDIR/repodata.json.sig over its final bytes.
#pragma once

#include <condaguard/channel/guard.hpp>
#include <condaguard/channel/layout.hpp>
#include <condaguard/package/archive.hpp>
#include <condaguard/trust/keys.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace condaguard {

inline constexpr Seconds default_index_lifetime{30 * 86400};

struct IndexSigning {
    KeyName key_name;
    const PrivateKey* key = nullptr;
    std::string channel_id;
    Seconds lifetime = default_index_lifetime;
    bool sign_packages = false;  // also sign every package that has no .sig
    TimePoint signed_at{};
};

struct IndexOptions {
    unsigned jobs = 0;  // 0: one per core
    std::optional<IndexSigning> signing;
    ScanLimits limits;  // caps on reading each package (no signed record vouches for uploads)
};

struct IndexProblem {
    std::string file;
    std::string reason;
};

struct SubdirReport {
    std::string subdir;
    std::filesystem::path repodata;
    std::size_t packages = 0;  // records written
    std::size_t scanned = 0;   // archives read this run
    std::size_t reused = 0;    // records kept from the previous run (unchanged files)
    std::vector<IndexProblem> excluded;  // reported and left out
    std::vector<std::string> signed_packages;
    std::optional<Guard> guard;
    bool removed_stale_signature = false;
};

// Indexes every subdir folder of `channel` that holds packages or a
// repodata.json, and always noarch. Throws on I/O errors.
std::vector<SubdirReport> index_channel(const std::filesystem::path& channel, const IndexOptions& options);

}  // namespace condaguard
