// libFuzzer target: explicit-file text -> parse_explicit. Any outcome but
// packages or an ExplicitError is a bug, and every package parsed must name
// its file, subdir and channel consistently with its URL.
#include <condaguard/install/explicit.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        for (const auto& p : condaguard::parse_explicit(text, "/cwd")) {
            if (p.url != p.channel_url + "/" + p.subdir + "/" + p.fn) __builtin_trap();
            if (p.fn != p.name.stem() + (p.name.format == condaguard::PackageFormat::Conda ? ".conda" : ".tar.bz2"))
                __builtin_trap();
        }
    } catch (const condaguard::ExplicitError&) {
    }
    return 0;
}
