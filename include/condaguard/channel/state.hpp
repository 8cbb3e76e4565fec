// What a client remembers per channel and subdir: the highest index version
// seen and the digest of that index, which channel each location served, and
// which subdirs each location was seen signed with ("location_subdirs").
// Kept in DIR/state.json, updated under an flock on DIR/state.lock, read
// with the bounded JSON reader (sys/json.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace condaguard {

struct SeenIndex {
    std::int64_t version = 0;
    std::string sha256;
    std::string signed_at;
};

class StateStore {
public:
    explicit StateStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
    const std::filesystem::path& dir() const noexcept { return dir_; }

    std::optional<SeenIndex> seen(const std::string& channel, const std::string& subdir) const;
    // The channel last verified as signed at this location (a directory or URL).
    std::optional<std::string> channel_at(const std::string& location) const;
    // The subdirs seen signed at this location, sorted. For a location
    // recorded before subdirs were kept per location: the subdirs seen for
    // the channel it served.
    std::vector<std::string> subdirs_at(const std::string& location) const;
    // Records a verified index; keeps the highest version.
    void record(const std::string& location, const std::string& channel, const std::string& subdir,
                const SeenIndex& seen);
    // Forgets a channel (all subdirs and locations); returns whether it was known.
    bool reset(const std::string& channel);
    nlohmann::json dump() const;

private:
    nlohmann::json load() const;
    std::filesystem::path dir_;
};

}  // namespace condaguard
