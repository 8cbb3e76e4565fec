// The two documents an audit compares: an installed package's record
// (PREFIX/conda-meta/NAME-VERSION-BUILD.json, spec conda-formats §4.1) and a
// package's own info/paths.json (§2.3). Both list paths in one entry format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace condaguard {

// Largest conda-meta record read (the biggest real ones are a few MiB).
inline constexpr std::size_t max_prefix_record_bytes = std::size_t{64} << 20;

// path_type, as conda writes it. Generated entries (written by conda at link
// time, not taken from the package) have no sha256 of their own.
enum class PathType {
    Hardlink,
    Softlink,
    Directory,
    PycFile,
    UnixPythonEntryPoint,
    WindowsPythonEntryPointScript,
    WindowsPythonEntryPointExe,
    LinkedPackageRecord,
};
std::string_view to_string(PathType t) noexcept;
bool is_generated(PathType t) noexcept;

enum class FileMode { Text, Binary };

struct PathEntry {
    std::string path;  // "_path": prefix-relative (record) or package-relative (paths.json), '/' separators
    PathType type = PathType::Hardlink;
    std::optional<std::string> sha256;            // lowercase hex
    std::optional<std::string> sha256_in_prefix;  // record only
    std::optional<std::uint64_t> size;
    std::optional<std::string> prefix_placeholder;
    FileMode file_mode = FileMode::Text;
    bool no_link = false;
};

// Throws std::runtime_error naming the fault (not the file): an entry that
// is not an object, a missing or non-string _path, an unsafe _path (empty,
// absolute, "." or ".." segments, NUL), an unknown path_type, a sha256 that
// is not 64 hex digits, paths_version other than 1, a path listed twice.
std::vector<PathEntry> parse_paths(const nlohmann::json& paths_json);

struct PrefixRecord {
    std::string name, version, build;
    std::string fn;       // "fn", else the basename of "url"
    std::string url;      // may be empty (old or hand-made records)
    std::string channel;  // subdir URL, may be empty
    std::string subdir;
    std::optional<std::string> sha256;  // lowercase hex
    std::optional<std::string> md5;
    std::optional<std::uint64_t> size;
    std::optional<std::string> noarch;  // "python", "generic"
    std::vector<std::string> files;     // "files"
    std::optional<std::vector<PathEntry>> paths;  // "paths_data.paths"; none in very old records
};

// Parses a record already read through sys/json.hpp. Throws
// std::runtime_error naming the fault.
PrefixRecord parse_prefix_record(const nlohmann::json& record);

// Whether a path from a record or paths.json is safe to look up below a
// prefix: relative, not empty, no "", "." or ".." segment, no NUL.
bool is_safe_relative_path(std::string_view path) noexcept;

}  // namespace condaguard
