// Package file names: NAME-VERSION-BUILD.conda and NAME-VERSION-BUILD.tar.bz2.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace condaguard {

enum class PackageFormat { TarBz2, Conda };

// "name-version-build" split from a package file name.
struct PackageName {
    std::string name, version, build;
    PackageFormat format = PackageFormat::Conda;
    std::string stem() const { return name + "-" + version + "-" + build; }
};

// Parses NAME-VERSION-BUILD.conda / .tar.bz2; nullopt for anything else.
std::optional<PackageName> parse_package_file_name(std::string_view file_name);

}  // namespace condaguard
