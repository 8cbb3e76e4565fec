#include <condaguard/sys/fs.hpp>

#include <cerrno>
#include <cstdlib>
#include <dirent.h>
#include <sys/random.h>
#include <sys/stat.h>
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

std::string_view describe(FileKind k) noexcept {
    switch (k) {
    case FileKind::Regular: return "a regular file";
    case FileKind::Missing: return "missing";
    case FileKind::Symlink: return "a symbolic link";
    case FileKind::Directory: return "a directory";
    case FileKind::Fifo: return "a FIFO";
    case FileKind::CharDevice: return "a character device";
    case FileKind::BlockDevice: return "a block device";
    case FileKind::Socket: return "a socket";
    case FileKind::Other: break;
    }
    return "not a regular file";
}

FileKind kind_of(mode_t mode) noexcept {
    if (S_ISREG(mode)) return FileKind::Regular;
    if (S_ISDIR(mode)) return FileKind::Directory;
    if (S_ISFIFO(mode)) return FileKind::Fifo;
    if (S_ISCHR(mode)) return FileKind::CharDevice;
    if (S_ISBLK(mode)) return FileKind::BlockDevice;
    if (S_ISSOCK(mode)) return FileKind::Socket;
    if (S_ISLNK(mode)) return FileKind::Symlink;
    return FileKind::Other;
}

namespace {
std::string kind_message(FileKind k) {
    if (k == FileKind::Missing) return "does not exist";
    return "is " + std::string(describe(k)) + ", not a regular file";
}
}  // namespace

NotRegularFile::NotRegularFile(FileKind k, std::string path)
    : std::runtime_error(kind_message(k)), kind_(k), path_(std::move(path)) {}

namespace {

OpenedFile finish_untrusted(Fd fd, int open_errno, const std::string& display) {
    if (!fd) {
        if (open_errno == ENOENT || open_errno == ENOTDIR) throw NotRegularFile(FileKind::Missing, display);
        // O_NOFOLLOW on a final symbolic link: ELOOP (EMLINK on some BSDs).
        if (open_errno == ELOOP || open_errno == EMLINK) throw NotRegularFile(FileKind::Symlink, display);
        // O_RDONLY on a socket fails with ENXIO; on a directory it succeeds.
        if (open_errno == ENXIO) throw NotRegularFile(FileKind::Socket, display);
        throw std::system_error(open_errno, std::generic_category(), display);
    }
    OpenedFile out{std::move(fd), {}};
    out.st = fstat_or_throw(out.fd.get(), display);
    if (!S_ISREG(out.st.st_mode)) throw NotRegularFile(kind_of(out.st.st_mode), display);
    const int fl = ::fcntl(out.fd.get(), F_GETFL);
    if (fl < 0 || ::fcntl(out.fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) throw errno_error(display);
    return out;
}

constexpr int untrusted_flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;

}  // namespace

OpenedFile open_untrusted(const std::filesystem::path& path) {
    Fd fd = open_raw(path, untrusted_flags);
    return finish_untrusted(std::move(fd), errno, path.string());
}

OpenedFile open_untrusted_at(int dirfd, const std::string& name, const std::filesystem::path& display) {
    if (name.empty() || name.find('/') != name.npos) throw NotRegularFile(FileKind::Missing, display.string());
    Fd fd = open_at_raw(dirfd, name, untrusted_flags);
    return finish_untrusted(std::move(fd), errno, display.string());
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

void write_atomic_at(int dirfd, const std::string& name, std::string_view data, mode_t mode, bool exclusive,
                     const std::filesystem::path& display) {
    if (name.empty() || name.find('/') != name.npos) throw std::invalid_argument("write_atomic_at: bad name " + name);
    Fd fd;
    std::string tmp;
    for (int attempt = 0; !fd; ++attempt) {
        unsigned char rnd[8];
        if (::getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd))
            throw errno_error("getrandom for a temporary file beside " + display.string());
        tmp = "." + name + ".tmp.";
        for (const unsigned char c : rnd) tmp += "0123456789abcdef"[c >> 4], tmp += "0123456789abcdef"[c & 15];
        fd = open_at_raw(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (!fd && (errno != EEXIST || attempt > 16))
            throw errno_error("cannot create a temporary file beside " + display.string());
    }
    try {
        if (::fchmod(fd.get(), mode) != 0) throw errno_error("chmod " + tmp);
        write_all(fd.get(), data, "write " + tmp);
        if (::fsync(fd.get()) != 0) throw errno_error("fsync " + tmp);
        fd.reset();
        if (exclusive) {
            if (::linkat(dirfd, tmp.c_str(), dirfd, name.c_str(), 0) != 0) throw errno_error(display.string());
            ::unlinkat(dirfd, tmp.c_str(), 0);
        } else if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
            throw errno_error("rename to " + display.string());
        }
    } catch (...) {
        ::unlinkat(dirfd, tmp.c_str(), 0);
        throw;
    }
}

Fd open_dir(const std::filesystem::path& path) {
    Fd fd = open_raw(path, O_RDONLY | O_DIRECTORY);
    if (!fd) throw errno_error(path.string());
    return fd;
}

FileKind kind_at(int dirfd, const std::string& name) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return FileKind::Missing;
        throw errno_error(name);
    }
    return kind_of(st.st_mode);
}

OpenedDir open_dir_at(int dirfd, const std::string& name) {
    if (name.empty() || name.find('/') != name.npos || name == "." || name == "..") return {Fd(), FileKind::Missing};
    Fd fd = open_at_raw(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd) return {std::move(fd), FileKind::Directory};
    const int err = errno;
    if (err != ENOENT && err != ENOTDIR && err != ELOOP) throw std::system_error(err, std::generic_category(), name);
    const FileKind k = kind_at(dirfd, name);
    // Replaced by a directory between the two calls: still refuse, as something else.
    return {Fd(), k == FileKind::Directory ? FileKind::Other : k};
}

std::vector<std::string> list_dir(int dirfd, const std::string& what) {
    const int dup_fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) throw errno_error(what);
    DIR* d = ::fdopendir(dup_fd);
    if (d == nullptr) {
        const int err = errno;
        ::close(dup_fd);
        throw std::system_error(err, std::generic_category(), what);
    }
    ::rewinddir(d);
    std::vector<std::string> names;
    for (;;) {
        errno = 0;
        const dirent* e = ::readdir(d);
        if (e == nullptr) {
            const int err = errno;
            ::closedir(d);
            if (err != 0) throw std::system_error(err, std::generic_category(), what);
            return names;
        }
        const std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
    }
}

}  // namespace condaguard::fs
