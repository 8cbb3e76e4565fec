// Small POSIX file helpers shared by the library: owned descriptors, capped
// reads, atomic writes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <utility>

namespace condaguard::fs {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept;

private:
    int fd_ = -1;
};

std::system_error errno_error(const std::string& what);

// open(2) with O_CLOEXEC added; returns an empty Fd and leaves errno set on failure.
Fd open_raw(const std::filesystem::path& path, int flags, mode_t mode = 0);
Fd open_at_raw(int dirfd, const std::string& name, int flags, mode_t mode = 0);

struct stat fstat_or_throw(int fd, const std::string& what);

// Reads fd to its end, or stops with `too_big` set once more than `cap`
// bytes have arrived (the data read so far is then incomplete).
struct CappedRead {
    std::string data;
    bool too_big = false;
};
CappedRead read_capped(int fd, std::size_t cap, const std::string& what);

void write_all(int fd, std::string_view data, const std::string& what);

// Writes `data` to a temporary file beside `path` (mode `mode`), fsyncs it and
// renames it over `path`. With `exclusive`, fails (EEXIST) when `path` exists.
void write_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode, bool exclusive);

}  // namespace condaguard::fs
