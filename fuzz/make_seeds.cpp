// Writes small real conda packages, built by the test suite's package builder:
// well-formed ones into DIR/channel/noarch (scripts/fuzz.sh indexes that
// channel for the fuzz_repodata seeds), and ones `index` refuses (no
// info/index.json, an index.json naming another package) into DIR/odd. All
// are seeds of fuzz_package. Small on purpose: the fuzzer mutates the whole
// input, so every byte of a seed is worth its cost.
// Usage: make_seeds DIR
#include "../tests/support/packages.hpp"

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fputs("usage: make_seeds DIR\n", stderr);
        return 2;
    }
    const std::filesystem::path good = std::filesystem::path(argv[1]) / "channel" / "noarch";
    const std::filesystem::path odd = std::filesystem::path(argv[1]) / "odd";
    using condaguard::PackageFormat;
    using condaguard::test::PackageSpec;
    for (const PackageFormat format : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        const std::string ext = format == PackageFormat::Conda ? "conda" : "tarbz2";
        PackageSpec plain;
        plain.name = "plain-" + ext;
        plain.format = format;

        PackageSpec deps;
        deps.name = "deps-" + ext;
        deps.format = format;
        deps.version = "2.1.0";
        deps.build = "py_0";
        deps.depends = {"python >=3.8", "zlib 1.2.*"};
        deps.files = {{"bin/tool", "#!/bin/sh\necho tool\n"},
                      {"lib/python3/site-packages/m/__init__.py", "X = 1\n"},
                      {"share/doc/m/README", std::string(300, 'r')}};

        PackageSpec no_index;
        no_index.name = "noindex-" + ext;
        no_index.format = format;
        no_index.with_index_json = false;

        PackageSpec odd_index;
        odd_index.name = "oddindex-" + ext;
        odd_index.format = format;
        odd_index.index_overrides = {{"name", "someone-else"}, {"subdir", "linux-64"}, {"license", nullptr}};

        for (const PackageSpec& spec : {plain, deps}) condaguard::test::build_package(good, spec);
        for (const PackageSpec& spec : {no_index, odd_index}) condaguard::test::build_package(odd, spec);
    }
    return 0;
}
