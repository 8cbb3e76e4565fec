// POSIX file helpers: owned descriptors, the one way to open a file someone
// else could have planted, capped reads, atomic writes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <utility>
#include <vector>

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

// What a path turned out to be when a regular file was wanted.
enum class FileKind { Regular, Missing, Symlink, Directory, Fifo, CharDevice, BlockDevice, Socket, Other };

// "a FIFO", "a directory", "a symbolic link", "missing", ...
std::string_view describe(FileKind k) noexcept;
FileKind kind_of(mode_t mode) noexcept;

// A path that is not a regular file where one was wanted. what() is
// "is a FIFO" and the like (no path: callers report the path beside it).
class NotRegularFile : public std::runtime_error {
public:
    NotRegularFile(FileKind k, std::string path);
    FileKind kind() const noexcept { return kind_; }
    const std::string& path() const noexcept { return path_; }

private:
    FileKind kind_;
    std::string path_;
};

struct OpenedFile {
    Fd fd;
    struct stat st {};
};

// The one way to open a file that someone else could have planted (packages,
// .sig files, keys, indexes, caches, state): O_RDONLY | O_NONBLOCK |
// O_NOFOLLOW | O_CLOEXEC, then fstat. Anything but a regular file (missing,
// a symbolic link, a FIFO, a device, a socket, a directory) throws
// NotRegularFile at once, without blocking; other errors throw
// std::system_error. O_NONBLOCK is cleared on the returned descriptor.
OpenedFile open_untrusted(const std::filesystem::path& path);
// The same, for `name` inside the directory `dirfd` (no '/' in `name`).
OpenedFile open_untrusted_at(int dirfd, const std::string& name, const std::filesystem::path& display);

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

// The same, inside the directory `dirfd`: the temporary file and the rename
// stay in that directory (openat/renameat/linkat), so a writer that reached
// `dirfd` without following links never writes anywhere else. `name` has
// no '/'; a symbolic link at `name` is replaced, never followed.
void write_atomic_at(int dirfd, const std::string& name, std::string_view data, mode_t mode, bool exclusive,
                     const std::filesystem::path& display);

// Opens a directory the user named (O_RDONLY | O_DIRECTORY: links in the
// path are followed, as for any argument). Throws std::system_error.
Fd open_dir(const std::filesystem::path& path);

// `name` inside `dirfd`, opened as a directory without following a link
// (O_NOFOLLOW | O_DIRECTORY). `kind` is Directory when `fd` is open, else
// what was found there (Missing, Symlink, Regular, ...).
struct OpenedDir {
    Fd fd;
    FileKind kind = FileKind::Missing;
};
OpenedDir open_dir_at(int dirfd, const std::string& name);

// What `name` inside `dirfd` is, without following a link.
FileKind kind_at(int dirfd, const std::string& name);

// The names in the directory `dirfd` (not "." and ".."), read through a
// duplicate of it; `dirfd` itself is left as it was.
std::vector<std::string> list_dir(int dirfd, const std::string& what);

}  // namespace condaguard::fs
