// libFuzzer target: archive bytes -> scan_package, as .conda and as .tar.bz2.
// The size and digest must always be those of the whole input.
#include <condaguard/package/archive.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <sys/mman.h>
#include <system_error>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    for (const char* fn : {"pkg-1.0-0.conda", "pkg-1.0-0.tar.bz2"}) {
        const int fd = ::memfd_create("fuzz", 0);
        if (fd < 0) return 0;
        if (::write(fd, data, size) != static_cast<ssize_t>(size) || ::lseek(fd, 0, SEEK_SET) != 0) {
            ::close(fd);
            return 0;
        }
        try {
            auto scan = condaguard::scan_package(fd, *condaguard::parse_package_file_name(fn));
            if (scan.size != size) __builtin_trap();
            if (scan.sha256 != condaguard::sha256_bytes({reinterpret_cast<const char*>(data), size})) __builtin_trap();
        } catch (const condaguard::CorruptPackage&) {
        }
        ::close(fd);
    }
    return 0;
}
