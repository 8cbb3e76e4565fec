// Writes a conda environment for bench/audit.py with the test suite's
// environment builder (tests/support/prefix.hpp): ROOT/env, ROOT/pkgs (the
// signed .conda archives) and ROOT/keys, N packages of FILES files each, of
// mixed sizes (0.5 to 8.5 kB, one file in fifty 256 kB).
// Usage: make_env ROOT N FILES
#include "../tests/support/packages.hpp"
#include "../tests/support/prefix.hpp"

#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: make_env ROOT N FILES\n";
        return 2;
    }
    const std::filesystem::path root = argv[1];
    const int n = std::atoi(argv[2]);
    const int files = std::atoi(argv[3]);
    condaguard::test::Noise noise;
    condaguard::test::TestEnv env(root);
    for (int i = 0; i < n; ++i) {
        condaguard::test::EnvPackage p{.name = "bench" + std::to_string(i)};
        for (int f = 0; f < files; ++f) {
            const std::size_t len = f % 50 == 0 ? 262144 : 500 + static_cast<std::size_t>((f * 7919) % 8000);
            p.files["lib/bench" + std::to_string(i) + "/d" + std::to_string(f % 20) + "/f" + std::to_string(f)] =
                condaguard::test::EnvFile{.data = noise.bytes(len)};
        }
        env.install(p);
    }
    std::filesystem::copy(env.keys_dir(), root / "keys", std::filesystem::copy_options::recursive);
    return 0;
}
