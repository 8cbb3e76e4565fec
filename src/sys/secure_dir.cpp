#include <condaguard/sys/secure_dir.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace condaguard::fs {

namespace {

namespace stdfs = std::filesystem;

constexpr int dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
constexpr mode_t created_ancestor_mode = 0755;
constexpr mode_t created_dir_mode = 0700;

// The components of `p` in order, without empty ones and ".".
void push_components_front(std::deque<std::string>& out, const stdfs::path& p) {
    std::vector<std::string> parts;
    for (const auto& c : p.relative_path()) {
        std::string s = c.string();
        if (!s.empty() && s != ".") parts.push_back(std::move(s));
    }
    out.insert(out.begin(), parts.begin(), parts.end());
}

[[noreturn]] void fault(stdfs::path path, DirFaultKind kind, std::string why) {
    throw UnsafeDirectory(DirFault{.path = std::move(path), .kind = kind, .why = std::move(why)});
}

void require_safe(const stdfs::path& path, int fd, bool ancestor) {
    const struct stat st = fstat_or_throw(fd, path.string());
    if (auto f = check_dir_stat(path, st, ancestor)) throw UnsafeDirectory(std::move(*f));
}

std::string read_link_at(int dirfd, const std::string& name, const stdfs::path& display) {
    std::string buf(256, '\0');
    for (;;) {
        const ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
        if (n < 0) throw errno_error("readlink " + display.string());
        if (static_cast<std::size_t>(n) < buf.size()) {
            buf.resize(static_cast<std::size_t>(n));
            return buf;
        }
        buf.resize(buf.size() * 2);
    }
}

// One directory reached on the walk: its descriptor and its physical path.
struct Level {
    Fd fd;
    stdfs::path path;
};

// The effective user's private group (Debian's and conda's default: a
// group named like the user, the user's primary group, with no other
// member listed), read once from the system's user and group databases.
std::optional<gid_t> read_user_private_group() {
    std::vector<char> buf(16384);
    struct passwd pw {};
    struct passwd* pwp = nullptr;
    if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &pwp) != 0 || pwp == nullptr) return std::nullopt;
    const std::string user = pw.pw_name;
    const gid_t gid = pw.pw_gid;
    struct group gr {};
    struct group* grp = nullptr;
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &grp) != 0 || grp == nullptr) return std::nullopt;
    if (user != gr.gr_name) return std::nullopt;
    for (char** m = gr.gr_mem; m != nullptr && *m != nullptr; ++m)
        if (user != *m) return std::nullopt;
    return gid;
}

}  // namespace

bool is_user_private_group(gid_t gid) {
    static const std::optional<gid_t> upg = read_user_private_group();
    return upg && *upg == gid;
}

std::optional<std::string> foreign_owner(const struct stat& st) {
    if (st.st_uid == 0 || st.st_uid == ::geteuid()) return std::nullopt;
    return fmt::format("owned by uid {}, not by you or root", st.st_uid);
}

std::optional<std::string> writable_by_others(const struct stat& st) {
    const mode_t writable = st.st_mode & (S_IWGRP | S_IWOTH);
    if (writable == 0) return std::nullopt;
    // conda makes ~/.conda 02775: group write of the owner's private group
    // lets nobody else in.
    if (writable == S_IWGRP && st.st_uid == ::geteuid() && is_user_private_group(st.st_gid)) return std::nullopt;
    return fmt::format("writable by group or others (mode {:04o})", st.st_mode & 07777);
}

std::optional<DirFault> check_dir_stat(const stdfs::path& path, const struct stat& st, bool ancestor) {
    if (!S_ISDIR(st.st_mode))
        return DirFault{.path = path, .kind = DirFaultKind::NotDirectory,
                        .why = fmt::format("{} is {}, not a directory", path.string(), describe(kind_of(st.st_mode)))};
    if (auto why = foreign_owner(st))
        return DirFault{.path = path, .kind = DirFaultKind::BadOwner, .why = path.string() + " is " + *why};
    const bool sticky_root_ancestor = ancestor && st.st_uid == 0 && (st.st_mode & S_ISVTX) != 0;
    if (auto why = writable_by_others(st); why && !sticky_root_ancestor)
        return DirFault{.path = path, .kind = DirFaultKind::Writable, .why = path.string() + " is " + *why};
    return std::nullopt;
}

Fd open_secure_dir(const stdfs::path& dir, CreateMissing create) {
    const stdfs::path absolute = dir.is_absolute() ? dir : stdfs::current_path() / dir;
    // With every link resolved by the walk itself, the lexical form equals the physical one.
    std::deque<std::string> todo;
    push_components_front(todo, absolute.lexically_normal());

    std::vector<Level> levels;
    levels.push_back(Level{.fd = open_raw("/", dir_flags), .path = "/"});
    if (!levels.back().fd) throw errno_error("open /");
    require_safe("/", levels.back().fd.get(), !todo.empty());

    int links = 0;
    while (!todo.empty()) {
        const std::string name = todo.front();
        todo.pop_front();
        if (name == "..") {
            if (levels.size() > 1) levels.pop_back();  // "/.." is "/"
            continue;
        }
        const Level& parent = levels.back();
        const stdfs::path path = parent.path / name;
        const bool ancestor = !todo.empty();

        struct stat lst {};
        if (::fstatat(parent.fd.get(), name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) throw errno_error("stat " + path.string());
            if (create == CreateMissing::No) fault(path, DirFaultKind::Missing, path.string() + " does not exist");
            const mode_t mode = ancestor ? created_ancestor_mode : created_dir_mode;
            if (::mkdirat(parent.fd.get(), name.c_str(), mode) != 0 && errno != EEXIST)
                throw errno_error("mkdir " + path.string());
            todo.push_front(name);  // look again at what is there now
            continue;
        }
        if (S_ISLNK(lst.st_mode)) {
            // The link's directory is safe (checked above); the link itself must
            // be the user's or root's, then its target is walked like the rest.
            if (auto why = foreign_owner(lst))
                fault(path, DirFaultKind::BadOwner, path.string() + " is a symbolic link " + *why);
            if (++links > max_symlinks_per_walk)
                fault(path, DirFaultKind::SymlinkLoop,
                      fmt::format("{}: more than {} symbolic links to follow (a loop?)", path.string(),
                                  max_symlinks_per_walk));
            const stdfs::path target = read_link_at(parent.fd.get(), name, path);
            if (target.is_absolute()) levels.resize(1);
            push_components_front(todo, target);
            continue;
        }
        Fd fd = open_at_raw(parent.fd.get(), name, dir_flags);
        if (!fd) {
            if (errno == ENOTDIR) {
                fault(path, DirFaultKind::NotDirectory,
                      fmt::format("{} is {}, not a directory", path.string(), describe(kind_of(lst.st_mode))));
            }
            if (errno == ELOOP || errno == ENOENT) {  // replaced since the fstatat: look again
                if (++links > max_symlinks_per_walk)
                    fault(path, DirFaultKind::SymlinkLoop, path.string() + " keeps changing while it is checked");
                todo.push_front(name);
                continue;
            }
            throw errno_error("open " + path.string());
        }
        require_safe(path, fd.get(), ancestor);
        levels.push_back(Level{.fd = std::move(fd), .path = path});
    }
    return std::move(levels.back().fd);
}

std::optional<DirFault> find_unsafe_dir(const stdfs::path& dir) {
    try {
        open_secure_dir(dir, CreateMissing::No);
        return std::nullopt;
    } catch (const UnsafeDirectory& e) {
        return e.fault();
    }
}

}  // namespace condaguard::fs
