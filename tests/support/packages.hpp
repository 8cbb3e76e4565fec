// Writes real conda packages for tests: .tar.bz2 (bzip2 tar) and .conda
// (stored zip of metadata.json, pkg-*.tar.zst and info-*.tar.zst), each with
// info/index.json, info/paths.json and info/files, via libarchive.
#pragma once

#include <condaguard/package/archive.hpp>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace condaguard::test {

struct PackageSpec {
    std::string name = "pkg";
    std::string version = "1.0";
    std::string build = "0";
    std::string subdir = "noarch";
    PackageFormat format = PackageFormat::Conda;
    std::map<std::string, std::string> files{{"bin/tool", "#!/bin/sh\necho tool\n"}};
    std::vector<std::string> depends;
    // Applied to info/index.json after the defaults; a null value removes a key.
    nlohmann::json index_overrides = nlohmann::json::object();
    bool with_index_json = true;

    std::string file_name() const;
};

// Writes the package into `dir` and returns its path.
std::filesystem::path build_package(const std::filesystem::path& dir, const PackageSpec& spec);

}  // namespace condaguard::test
