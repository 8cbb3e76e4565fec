// The signed index's guard fields (info.guard in repodata.json), the times
// and durations they use, and the client's per-channel state.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace condaguard {

using Clock = std::chrono::system_clock;
using Seconds = std::chrono::seconds;
using TimePoint = std::chrono::time_point<Clock, Seconds>;

// "2026-11-25T09:14:17Z" (RFC 3339, UTC, whole seconds).
std::string format_time(TimePoint t);
// Strict: exactly YYYY-MM-DDTHH:MM:SSZ; nullopt otherwise.
std::optional<TimePoint> parse_time(std::string_view s);
// "30d", "12h", "15m", "10s": a positive whole number and one unit; nullopt otherwise.
std::optional<Seconds> parse_duration(std::string_view s);
TimePoint now();

// "guard": {"channel": ID, "subdir": S, "version": N, "signed_at": T, "expires": T}
struct Guard {
    std::string channel;
    std::string subdir;
    std::int64_t version = 0;
    TimePoint signed_at{};
    TimePoint expires{};

    nlohmann::json to_json() const;
    // Why `j` is not a well-formed guard object, or the guard.
    static Guard from_json(const nlohmann::json& j);  // throws std::invalid_argument naming the field
};

// What a client remembers per channel and subdir: the highest index version
// seen and the digest of that index. Kept in DIR/state.json, updated under a lock.
struct SeenIndex {
    std::int64_t version = 0;
    std::string sha256;
    std::string signed_at;
};

class StateStore {
public:
    // $CONDA_GUARD_STATE_DIR, else $HOME/.conda/guard.
    static std::filesystem::path default_dir();
    explicit StateStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
    const std::filesystem::path& dir() const noexcept { return dir_; }

    std::optional<SeenIndex> seen(const std::string& channel, const std::string& subdir) const;
    // The channel last verified as signed at this location (a directory or URL).
    std::optional<std::string> channel_at(const std::string& location) const;
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
