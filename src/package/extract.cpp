#include <condaguard/package/extract.hpp>

#include "archive_walk.hpp"
#include "tar_headers.hpp"

#include <condaguard/sys/fs.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace condaguard {

namespace {

using detail::member_name;

// Symbolic links followed while resolving one target, as the kernel's limit.
constexpr int max_link_hops = 40;

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        std::size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        out.emplace_back(path.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

std::string join_path(const std::vector<std::string>& segs, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        if (i > 0) out += '/';
        out += segs[i];
    }
    return out;
}

[[noreturn]] void refuse(const std::string& where, const std::string& raw, const std::string& why) {
    throw CorruptPackage(fmt::format("{}member {} {}", where, member_name(raw), why));
}

std::string_view type_word(mode_t type) {
    switch (type) {
    case AE_IFCHR: return "is a character device";
    case AE_IFBLK: return "is a block device";
    case AE_IFIFO: return "is a FIFO";
    case AE_IFSOCK: return "is a socket";
    default: return "has an unknown file type";
    }
}

struct DirFix {
    mode_t mode = 0755;
    std::optional<timespec> mtime;  // none for directories no member named
};

// Writes tree members below `root`, every path resolved from `root` one
// segment at a time without following links.
class DiskSink final : public detail::MemberSink {
public:
    explicit DiskSink(int root) : root_(root) {}

    void member(archive_entry* e, const std::string& path, const std::string& raw, const std::string& where,
                detail::MemberData& data) override {
        if (path.empty()) return;  // "./": the destination itself
        const std::vector<std::string> segs = split_path(path);
        if (segs.size() > max_extract_depth)
            refuse(where, raw, fmt::format("is more than {} directories deep", max_extract_depth));
        for (std::size_t i = 1; i < segs.size(); ++i)
            if (const std::string prefix = join_path(segs, i); symlinks_.contains(prefix))
                refuse(where, raw, fmt::format("passes through the symbolic link member {}", member_name(prefix)));

        const mode_t perm = archive_entry_perm(e);
        if ((perm & 07000) != 0)
            refuse(where, raw, fmt::format("has setuid, setgid or sticky bits (mode {:04o})", perm & 07777));
        const char* hardlink = archive_entry_hardlink(e);
        const mode_t type = archive_entry_filetype(e);
        const std::optional<timespec> mtime =
            archive_entry_mtime_is_set(e)
                ? std::optional<timespec>(timespec{.tv_sec = archive_entry_mtime(e),
                                                   .tv_nsec = archive_entry_mtime_nsec(e)})
                : std::nullopt;

        if (hardlink != nullptr) {
            const std::string_view h = hardlink;
            if (h.starts_with('/'))
                refuse(where, raw, fmt::format("is a hard link to the absolute path {}", member_name(h)));
            if (std::ranges::count(split_path(h), std::string("..")) > 0)
                refuse(where, raw, fmt::format("is a hard link to {}, outside the package", member_name(h)));
            const std::string target = detail::normalised_member_path(h, where);
            if (!regular_.contains(target))
                refuse(where, raw, fmt::format("is a hard link to {}, which is not an earlier regular member",
                                               member_name(hardlink)));
            const std::vector<std::string> tsegs = split_path(target);
            const fs::Fd from = open_parent(tsegs, where, raw, Create::No);
            const fs::Fd to = open_parent(segs, where, raw, Create::Yes);
            if (::linkat(from.get(), tsegs.back().c_str(), to.get(), segs.back().c_str(), 0) != 0)
                fail_at(where, raw, "linkat");
            return;
        }
        switch (type) {
        case AE_IFDIR: {
            make_dirs(segs, segs.size(), where, raw);
            dirs_[path] = DirFix{.mode = (perm & 0755) | 0700, .mtime = mtime};
            return;
        }
        case AE_IFREG: {
            const fs::Fd parent = open_parent(segs, where, raw, Create::Yes);
            const fs::Fd out =
                fs::open_at_raw(parent.get(), segs.back(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
            if (!out) fail_at(where, raw, "open");
            for (auto chunk = data.next(); !chunk.empty(); chunk = data.next())
                fs::write_all(out.get(), {reinterpret_cast<const char*>(chunk.data()), chunk.size()}, "extract");
            if (::fchmod(out.get(), perm & 0755) != 0) fail_at(where, raw, "fchmod");
            if (mtime) {
                const timespec times[2] = {*mtime, *mtime};
                if (::futimens(out.get(), times) != 0) fail_at(where, raw, "futimens");
            }
            regular_.insert(path);
            return;
        }
        case AE_IFLNK: {
            const char* t = archive_entry_symlink(e);
            const std::string target = t != nullptr ? t : "";
            if (target.empty()) refuse(where, raw, "is a symbolic link without a target");
            if (target.starts_with('/'))
                refuse(where, raw, fmt::format("is a symbolic link to the absolute path {}", member_name(target)));
            int hops = 0;
            if (!stays_inside(segs, target, hops))
                refuse(where, raw, fmt::format("is a symbolic link to {}, outside the package", member_name(target)));
            const fs::Fd parent = open_parent(segs, where, raw, Create::Yes);
            if (::symlinkat(target.c_str(), parent.get(), segs.back().c_str()) != 0) fail_at(where, raw, "symlinkat");
            if (mtime) {
                const timespec times[2] = {*mtime, *mtime};
                if (::utimensat(parent.get(), segs.back().c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
                    fail_at(where, raw, "utimensat");
            }
            symlinks_.emplace(path, target);
            link_where_.emplace(path, std::pair{where, raw});
            return;
        }
        default: refuse(where, raw, std::string(type_word(type)));
        }
    }

    // Once every member is known: each symbolic link, followed through the
    // archive's other links, must stay inside; then directories get their
    // modes and times, deepest first (adding entries changed their times).
    void finish() {
        for (const auto& [path, target] : symlinks_) {
            const auto& [where, raw] = link_where_.at(path);
            int hops = 0;
            if (!stays_inside(split_path(path), target, hops))
                refuse(where, raw,
                       fmt::format("is a symbolic link to {}, which leads outside the package", member_name(target)));
        }
        std::vector<std::pair<std::string, DirFix>> order(dirs_.begin(), dirs_.end());
        std::ranges::stable_sort(order, [](const auto& a, const auto& b) {
            return std::ranges::count(a.first, '/') > std::ranges::count(b.first, '/');
        });
        for (const auto& [path, fix] : order) {
            const std::vector<std::string> segs = split_path(path);
            const fs::Fd dir = open_existing(segs, segs.size(), "", path);
            if (::fchmod(dir.get(), fix.mode) != 0) fail_at("", path, "fchmod");
            if (fix.mtime) {
                const timespec times[2] = {*fix.mtime, *fix.mtime};
                if (::futimens(dir.get(), times) != 0) fail_at("", path, "futimens");
            }
        }
    }

private:
    enum class Create { No, Yes };

    [[noreturn]] void fail_at(const std::string& where, const std::string& raw, const char* call) const {
        const int err = errno;
        // What the archive made impossible is the archive's fault; the rest is I/O.
        if (err == EEXIST) refuse(where, raw, "is written over something an earlier member made");
        if (err == ELOOP || err == ENOTDIR) refuse(where, raw, "has a parent that is not a directory");
        throw std::system_error(err, std::generic_category(),
                                fmt::format("extract {}{}: {}", where, member_name(raw), call));
    }

    // Whether `target`, followed from the directory holding the link at
    // `link_segs`, stays inside the tree, expanding the archive's symbolic
    // links on the way as the kernel would.
    bool stays_inside(const std::vector<std::string>& link_segs, std::string_view target, int& hops) const {
        std::vector<std::string> stack(link_segs.begin(), link_segs.end() - 1);
        std::deque<std::string> todo;
        for (auto& s : split_path(target)) todo.push_back(std::move(s));
        while (!todo.empty()) {
            std::string seg = std::move(todo.front());
            todo.pop_front();
            if (seg.empty() || seg == ".") continue;
            if (seg == "..") {
                if (stack.empty()) return false;
                stack.pop_back();
                continue;
            }
            stack.push_back(std::move(seg));
            const auto it = symlinks_.find(join_path(stack, stack.size()));
            if (it == symlinks_.end()) continue;
            if (++hops > max_link_hops) return false;
            stack.pop_back();
            if (it->second.starts_with('/')) return false;
            const auto more = split_path(it->second);
            todo.insert(todo.begin(), more.begin(), more.end());
        }
        return true;
    }

    // The directory segs[0..n) below the root, each segment opened with
    // O_NOFOLLOW: a link or a non-directory anywhere on the way is refused.
    fs::Fd open_existing(const std::vector<std::string>& segs, std::size_t n, const std::string& where,
                         const std::string& raw) const {
        fs::Fd cur(::fcntl(root_, F_DUPFD_CLOEXEC, 0));
        if (!cur) fail_at(where, raw, "dup");
        for (std::size_t i = 0; i < n; ++i) {
            fs::OpenedDir next = fs::open_dir_at(cur.get(), segs[i]);
            if (!next.fd)
                refuse(where, raw, fmt::format("has a parent {} that is {}", member_name(join_path(segs, i + 1)),
                                               fs::describe(next.kind)));
            cur = std::move(next.fd);
        }
        return cur;
    }

    // The directory segs[0..n), made (0700 for now, 0755 at the end) where missing.
    fs::Fd make_dirs(const std::vector<std::string>& segs, std::size_t n, const std::string& where,
                     const std::string& raw) {
        if (n == cached_n_ && cached_ && std::equal(segs.begin(), segs.begin() + static_cast<long>(n), cached_segs_.begin()))
            return fs::Fd(::fcntl(cached_.get(), F_DUPFD_CLOEXEC, 0));
        fs::Fd cur(::fcntl(root_, F_DUPFD_CLOEXEC, 0));
        if (!cur) fail_at(where, raw, "dup");
        for (std::size_t i = 0; i < n; ++i) {
            fs::OpenedDir next = fs::open_dir_at(cur.get(), segs[i]);
            if (next.kind == fs::FileKind::Missing) {
                if (::mkdirat(cur.get(), segs[i].c_str(), 0700) != 0) fail_at(where, raw, "mkdirat");
                dirs_.try_emplace(join_path(segs, i + 1), DirFix{});
                next = fs::open_dir_at(cur.get(), segs[i]);
            }
            if (!next.fd)
                refuse(where, raw, fmt::format("has a parent {} that is {}", member_name(join_path(segs, i + 1)),
                                               fs::describe(next.kind)));
            cur = std::move(next.fd);
        }
        cached_segs_.assign(segs.begin(), segs.begin() + static_cast<long>(n));
        cached_n_ = n;
        cached_ = fs::Fd(::fcntl(cur.get(), F_DUPFD_CLOEXEC, 0));
        return cur;
    }

    fs::Fd open_parent(const std::vector<std::string>& segs, const std::string& where, const std::string& raw,
                       Create create) {
        if (create == Create::Yes) return make_dirs(segs, segs.size() - 1, where, raw);
        return open_existing(segs, segs.size() - 1, where, raw);
    }

    int root_;
    std::set<std::string> regular_;                 // regular members so far: hard link targets
    std::map<std::string, std::string> symlinks_;  // link member -> its target
    std::map<std::string, std::pair<std::string, std::string>> link_where_;  // link member -> (where, raw)
    std::map<std::string, DirFix> dirs_;           // every directory made
    // The last parent directory opened, reused while members share it.
    std::vector<std::string> cached_segs_;
    std::size_t cached_n_ = 0;
    fs::Fd cached_;
};

}  // namespace

PackageScan extract_package(int archive_fd, const PackageName& name, const TrustedRecord& verified, int dest_dirfd,
                            const ExtractLimits& limits) {
    if (!fs::list_dir(dest_dirfd, "extract destination").empty())
        throw std::system_error(EEXIST, std::generic_category(), "extract destination is not empty");
    DiskSink sink(dest_dirfd);
    // The ratio cap guards scans of unverified uploads; these bytes are the
    // signed ones, so only the absolute caps apply.
    const ScanLimits scan_limits{.max_unpacked_bytes = limits.max_unpacked_bytes,
                                 .max_ratio = UINT64_MAX,
                                 .max_info_bytes = UINT64_MAX,
                                 .max_members = limits.max_members};
    PackageScan out =
        detail::walk_package(archive_fd, name, scan_limits, verified.size, sink, detail::Digests::Sha256Only);
    if (out.size != verified.size || out.sha256 != verified.sha256)
        throw VerdictError(Verdict::Invalid, "changed while being read");
    sink.finish();
    return out;
}

}  // namespace condaguard
