// Packages named by URL: the forms conda accepts on its command line and in
// @EXPLICIT files (conda-formats §5.2), split into the channel, subdir and
// file name the gate needs to find the package's signed record.
#pragma once

#include <condaguard/package/name.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

struct PackageUrl {
    std::string url;          // as given (a path made file://), credentials kept: never print it unredacted
    std::string channel_url;  // everything before "/SUBDIR/FILE", credentials kept
    std::string subdir;
    std::string fn;
    PackageName name;
    // From a "#..." suffix, lowercase hex; conda's only checksum for an explicit line.
    std::optional<std::string> sha256, md5;
};

// A line or argument that is not a package URL or path.
class ExplicitError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Parses one URL (scheme://.../SUBDIR/FILE[#hash]) or local path (made an
// absolute file:// URL against `cwd`). Throws ExplicitError naming the fault.
PackageUrl parse_package_url(std::string_view text, const std::filesystem::path& cwd);

// Parses the text of an explicit file: blank lines and '#' lines dropped,
// '@EXPLICIT' required, every other line a package. Errors name the line.
std::vector<PackageUrl> parse_explicit(std::string_view text, const std::filesystem::path& cwd);

// Reads and parses an explicit file (opened as untrusted, at most 16 MiB);
// relative paths inside it are taken against the current directory, as
// conda does.
std::vector<PackageUrl> read_explicit_file(const std::filesystem::path& file, const std::filesystem::path& cwd);

}  // namespace condaguard
