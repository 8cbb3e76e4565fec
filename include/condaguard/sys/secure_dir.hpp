// Directories that hold trust (keys, rollback state): nobody but the user or
// root may be able to change what is in them, nor what leads to them.
//
// Like OpenSSH's StrictModes (safe_path in misc.c): the directory and each of
// its ancestors up to / must be owned by root or the effective user and not
// writable by group or others (group write by the user's own private group
// excepted: conda makes ~/.conda 02775). One exception, for ancestors only: a root-owned
// directory with the sticky bit (/tmp) is fine, because there nobody can
// rename or remove what another user made.
//
// The walk starts at / and opens one component at a time with openat(...,
// O_NOFOLLOW | O_DIRECTORY), checking each opened directory with fstat, so the
// directory checked is the directory used (the returned descriptor).
// Symbolic links are resolved, safely: a link is followed only when it lives
// in a directory already found safe and is owned by root or the user (so only
// they could have made it point where it does); its target is then walked and
// checked component by component like the rest, at most 40 links per walk.
// ".." in a link's target goes to the physical parent of the directory reached.
#pragma once

#include <condaguard/sys/fs.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace condaguard::fs {

inline constexpr int max_symlinks_per_walk = 40;  // as the kernel's ELOOP limit

enum class DirFaultKind {
    Missing,       // a component does not exist (and was not to be created)
    NotDirectory,  // a component is a file, FIFO, device...
    BadOwner,      // owned by neither root nor the effective user
    Writable,      // writable by group or others (and not a sticky root-owned ancestor)
    SymlinkLoop,   // more than max_symlinks_per_walk links
};

// The first offending path on the walk and why (why names the path).
struct DirFault {
    std::filesystem::path path;
    DirFaultKind kind;
    std::string why;
};

class UnsafeDirectory : public std::runtime_error {
public:
    explicit UnsafeDirectory(DirFault f) : std::runtime_error(f.why), fault_(std::move(f)) {}
    const DirFault& fault() const noexcept { return fault_; }

private:
    DirFault fault_;
};

enum class CreateMissing {
    No,
    // Missing components are made with mkdirat: ancestors 0755, the
    // directory itself 0700 (less when the umask says so).
    Yes,
};

// Walks `dir` (a relative path is taken from the current directory) and
// returns a descriptor of it (O_RDONLY | O_DIRECTORY). Throws UnsafeDirectory
// for the first component that is missing, not a directory or unsafe;
// std::system_error for other errors (EACCES, EIO...).
Fd open_secure_dir(const std::filesystem::path& dir, CreateMissing create = CreateMissing::No);

// The same check, as data: the first fault, or nothing when `dir` is safe.
// Other errors still throw std::system_error.
std::optional<DirFault> find_unsafe_dir(const std::filesystem::path& dir);

// The two halves of the rule, for anything trust rests on (these directories
// and the key and state files in them): why `st` breaks it, without a path,
// or nothing when it holds.
// "owned by uid N, not by you or root"
std::optional<std::string> foreign_owner(const struct stat& st);
// "writable by group or others (mode 0775)". Group write is fine when the
// owner is the effective user and the group is that user's private group
// (is_user_private_group): conda itself makes ~/.conda 02775.
std::optional<std::string> writable_by_others(const struct stat& st);

// Whether `gid` is the effective user's private group: the user's primary
// group, named like the user, listing no other member (read once).
bool is_user_private_group(gid_t gid);

// The rule for one directory: a fault for `st` (of `path`) or nothing.
// `ancestor`: a root-owned sticky directory is accepted.
std::optional<DirFault> check_dir_stat(const std::filesystem::path& path, const struct stat& st, bool ancestor);

}  // namespace condaguard::fs
