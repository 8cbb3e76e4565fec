// The signed index's guard fields: info.guard in repodata.json.
#pragma once

#include <condaguard/sys/time.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace condaguard {

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

}  // namespace condaguard
