#include "fs.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace condaguard::fs {

void Fd::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::system_error errno_error(const std::string& what) {
    return std::system_error(errno, std::generic_category(), what);
}

Fd open_raw(const std::filesystem::path& path, int flags, mode_t mode) {
    int fd;
    do {
        fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return Fd(fd);
}

Fd open_at_raw(int dirfd, const std::string& name, int flags, mode_t mode) {
    int fd;
    do {
        fd = ::openat(dirfd, name.c_str(), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return Fd(fd);
}

struct stat fstat_or_throw(int fd, const std::string& what) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw errno_error(what);
    return st;
}

CappedRead read_capped(int fd, std::size_t cap, const std::string& what) {
    CappedRead out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw errno_error(what);
        }
        if (n == 0) break;
        if (out.data.size() + static_cast<std::size_t>(n) > cap) {
            out.too_big = true;
            break;
        }
        out.data.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

void write_all(int fd, std::string_view data, const std::string& what) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw errno_error(what);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

void write_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode, bool exclusive) {
    std::string tmpl = path.string() + ".tmp.XXXXXX";
    int raw = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (raw < 0) throw errno_error("cannot create a temporary file beside " + path.string());
    Fd fd(raw);
    const std::filesystem::path tmp = tmpl;
    try {
        if (::fchmod(fd.get(), mode) != 0) throw errno_error("chmod " + tmp.string());
        write_all(fd.get(), data, "write " + tmp.string());
        if (::fsync(fd.get()) != 0) throw errno_error("fsync " + tmp.string());
        fd.reset();
        if (exclusive) {
            // link(2) fails with EEXIST instead of replacing: exclusive and atomic.
            if (::link(tmp.c_str(), path.c_str()) != 0) throw errno_error(path.string());
            ::unlink(tmp.c_str());
        } else if (::rename(tmp.c_str(), path.c_str()) != 0) {
            throw errno_error("rename to " + path.string());
        }
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

}  // namespace condaguard::fs
