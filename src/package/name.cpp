#include <condaguard/package/name.hpp>

namespace condaguard {

std::optional<PackageName> parse_package_file_name(std::string_view fn) {
    // A file name only: no directories, and nothing open(2) would cut short or a shell would mangle.
    for (char c : fn)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/' || c == '\\') return std::nullopt;
    PackageName p;
    if (fn.ends_with(".conda")) {
        p.format = PackageFormat::Conda;
        fn.remove_suffix(6);
    } else if (fn.ends_with(".tar.bz2")) {
        p.format = PackageFormat::TarBz2;
        fn.remove_suffix(8);
    } else {
        return std::nullopt;
    }
    const auto b = fn.rfind('-');
    if (b == fn.npos || b == 0) return std::nullopt;
    const auto v = fn.rfind('-', b - 1);
    if (v == fn.npos || v == 0) return std::nullopt;
    p.name = fn.substr(0, v);
    p.version = fn.substr(v + 1, b - v - 1);
    p.build = fn.substr(b + 1);
    if (p.version.empty() || p.build.empty()) return std::nullopt;
    return p;
}

}  // namespace condaguard
