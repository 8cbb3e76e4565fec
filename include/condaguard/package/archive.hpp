// Conda package archives (.tar.bz2 and .conda), read once, front to back:
// every byte is hashed as it passes (md5, sha256, size) and info/index.json
// is pulled out on the way. Nothing is extracted to disk.
#pragma once

#include <condaguard/package/name.hpp>
#include <condaguard/trust/digest.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace condaguard {

inline constexpr std::size_t max_index_json_bytes = 1 << 20;

using Md5Digest = std::array<unsigned char, 16>;

struct PackageScan {
    std::uint64_t size = 0;
    Sha256Digest sha256{};
    Md5Digest md5{};
    // info/index.json parsed, when the archive has one.
    std::optional<nlohmann::json> index_json;
};

// A package archive that cannot be read (corrupt, truncated, not a conda package).
class CorruptPackage : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Reads the archive from `fd` to its end. Throws CorruptPackage naming
// `display` when the archive is damaged or its info/index.json is not a JSON
// object; std::system_error on read errors.
PackageScan scan_package(int fd, const PackageName& name, const std::string& display);

// Why index.json disagrees with the file name (name, version, build), or
// with `subdir` when it names one; nullopt when they agree.
std::optional<std::string> identity_mismatch(const nlohmann::json& index_json, const PackageName& name,
                                             std::string_view subdir);

}  // namespace condaguard
