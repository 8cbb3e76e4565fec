// libFuzzer target: .condarc text -> load_condarc (through a file, as conda
// reads it) and resolve_channel on every channel it names. Any outcome but a
// configuration or a ConfigError is a bug.
#include <condaguard/config/condarc.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

const std::filesystem::path& home() {
    static const std::filesystem::path dir = [] {
        std::string t = (std::filesystem::temp_directory_path() / "fuzz-condarc.XXXXXX").string();
        if (::mkdtemp(t.data()) == nullptr) std::abort();
        return std::filesystem::path(t);
    }();
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    {
        std::ofstream out(home() / ".condarc", std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    try {
        const condaguard::CondaConfig c =
            condaguard::load_condarc(condaguard::CondaEnvironment{.home = home(), .variables = {{"HOME", home()}}});
        for (const auto& ch : c.channels.value) {
            try {
                (void)condaguard::resolve_channel(c, ch, "/");
            } catch (const condaguard::ConfigError&) {
            }
        }
    } catch (const condaguard::ConfigError&) {
    }
    return 0;
}
