// Writes N real conda packages (half .conda, half .tar.bz2) into DIR/noarch
// for the benchmarks, with the test suite's package builder.
// Usage: make_packages [--no-depends] DIR N [TOTAL_MB]
// Each package depends on python and zlib (realistic index records), unless
// --no-depends (a channel a solver installs from alone: the plugin install
// benchmark). Without TOTAL_MB: small packages of 40 to 88 kB (the index
// benchmark). With it: mixed sizes adding up to about TOTAL_MB, one package
// in five ten times larger than the others (the gate benchmarks).
#include "../tests/support/packages.hpp"

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
    const bool with_depends = !(argc > 1 && std::string_view(argv[1]) == "--no-depends");
    if (!with_depends) {
        --argc;
        ++argv;
    }
    if (argc != 3 && argc != 4) {
        std::cerr << "usage: make_packages [--no-depends] DIR N [TOTAL_MB]\n";
        return 2;
    }
    const std::filesystem::path dir = std::filesystem::path(argv[1]) / "noarch";
    const int n = std::atoi(argv[2]);
    const std::uint64_t total_mb = argc == 4 ? std::strtoull(argv[3], nullptr, 10) : 0;
    auto weight = [](int i) { return i % 5 == 0 ? 10 : 1; };  // both formats among the large ones
    std::uint64_t weights = 0;
    for (int i = 0; i < n; ++i) weights += static_cast<std::uint64_t>(weight(i));
    condaguard::test::Noise noise;  // payloads that do not compress away
    for (int i = 0; i < n; ++i) {
        condaguard::test::PackageSpec spec;
        spec.name = "bench" + std::to_string(i);
        spec.format = i % 2 == 0 ? condaguard::PackageFormat::Conda : condaguard::PackageFormat::TarBz2;
        const std::size_t len = total_mb ? static_cast<std::size_t>(total_mb * 1000000 * weight(i) / weights)
                                         : static_cast<std::size_t>(40000 + (i % 7) * 8000);
        // Paths of its own: installed together, no package overwrites another.
        spec.files = {{"lib/" + spec.name + ".bin", noise.bytes(len)},
                      {"bin/" + spec.name, "#!/bin/sh\necho " + spec.name + "\n"}};
        if (with_depends) spec.depends = {"python >=3.8", "zlib"};
        condaguard::test::build_package(dir, spec);
    }
    return 0;
}
