#include <condaguard/install/pkgs_dir.hpp>

#include <condaguard/sys/json.hpp>
#include <condaguard/sys/secure_dir.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace condaguard {

namespace {

constexpr std::size_t max_claim_json_bytes = std::size_t{16} << 20;
constexpr std::size_t copy_chunk = std::size_t{1} << 20;

[[noreturn]] void throw_errno(const std::string& what) { throw fs::errno_error(what); }

// A name directly inside the package directory: no '/', not "." or "..".
void check_plain_name(std::string_view name, const char* what) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
        name.find('\0') != std::string_view::npos)
        throw std::invalid_argument(fmt::format("{} is not a plain file name", what));
}

PackageName package_of(std::string_view fn) {
    check_plain_name(fn, "package file name");
    auto name = parse_package_file_name(fn);
    if (!name) throw std::invalid_argument("package file name is not NAME-VERSION-BUILD.conda or .tar.bz2");
    return *name;
}

// `name` inside `parent` as a directory, made (mode `mode`) when missing.
fs::Fd dir_made_at(int parent, const std::string& name, mode_t mode, const std::filesystem::path& display) {
    fs::OpenedDir d = fs::open_dir_at(parent, name);
    if (d.kind == fs::FileKind::Missing) {
        if (::mkdirat(parent, name.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir " + display.string());
        d = fs::open_dir_at(parent, name);
    }
    if (!d.fd)
        throw std::system_error(ENOTDIR, std::generic_category(),
                                fmt::format("{} is {}", display.string(), fs::describe(d.kind)));
    return std::move(d.fd);
}

void fsync_dir(int fd, const std::string& what) {
    if (::fsync(fd) != 0) throw_errno("fsync " + what);
}

void rename_at(int from_dir, const std::string& from, int to_dir, const std::string& to, unsigned flags,
               const std::string& what) {
    if (::renameat2(from_dir, from.c_str(), to_dir, to.c_str(), flags) != 0) throw_errno("rename " + what);
}

// Copies all of `in` (from offset 0, its file offset untouched) to `out`.
void copy_all(int in, int out, std::uint64_t size, const std::string& what) {
    loff_t off = 0;
    bool kernel_copy = true;
    std::unique_ptr<char[]> buf;
    while (static_cast<std::uint64_t>(off) < size) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(copy_chunk, size - off));
        if (kernel_copy) {
            const ssize_t n = ::copy_file_range(in, &off, out, nullptr, want, 0);
            if (n > 0) continue;
            if (n == 0) break;
            if (errno == EINTR) continue;
            if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) throw_errno(what);
            kernel_copy = false;
            buf = std::make_unique_for_overwrite<char[]>(copy_chunk);
        }
        const ssize_t n = ::pread(in, buf.get(), want, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno(what);
        if (n == 0) break;
        fs::write_all(out, {buf.get(), static_cast<std::size_t>(n)}, what);
        off += n;
    }
    if (static_cast<std::uint64_t>(off) != size)
        throw std::system_error(EIO, std::generic_category(), what + ": the archive shrank while being copied");
}

// Eight characters of [a-z0-9], from getrandom.
std::string random_name() {
    unsigned char bytes[8];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("getrandom");
        got += static_cast<std::size_t>(n);
    }
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string out;
    for (unsigned char b : bytes) out += alphabet[b % 36];
    return out;
}

// What a JSON file in info/ could make conda take its folder for, as the
// leading fields of (name, version, build) it names before one is missing
// or not a string: the folder claims every package whose fields start with
// them (all three: that one package; none: any package, as when the file is
// a link or cannot be read as a JSON object). A file that names another
// package in a field before one is missing claims nothing of this one.
// nullopt when the file is not there.
using ClaimPrefix = std::vector<std::string>;

std::optional<ClaimPrefix> json_claim(int info, const std::string& file, const std::filesystem::path& display) {
    if (fs::kind_at(info, file) == fs::FileKind::Missing) return std::nullopt;
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted_at(info, file, display);
    } catch (const fs::NotRegularFile&) {
        return ClaimPrefix{};  // conda's open() follows a link
    }
    const fs::CappedRead r = fs::read_capped(f.fd.get(), max_claim_json_bytes, display.string());
    if (r.too_big) return ClaimPrefix{};
    nlohmann::json j;
    try {
        j = parse_json(r.data, JsonLimits{.max_bytes = max_claim_json_bytes});
    } catch (const JsonError&) {
        return ClaimPrefix{};
    }
    ClaimPrefix out;
    if (!j.is_object()) return out;
    for (const char* key : {"name", "version", "build"}) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_string()) break;
        out.push_back(it->get_ref<const std::string&>());
    }
    return out;
}

// The claims of the top-level entry `name` (one per JSON file there; none
// when neither is), or nullopt when it is not a package folder: a file, a
// link (conda skips them), a folder without info/.
std::optional<std::vector<ClaimPrefix>> folder_claims(int pkgs, const std::string& name,
                                                      const std::filesystem::path& display) {
    const fs::OpenedDir folder = fs::open_dir_at(pkgs, name);
    if (!folder.fd) return std::nullopt;
    const fs::OpenedDir info = fs::open_dir_at(folder.fd.get(), "info");
    if (info.kind == fs::FileKind::Symlink) return std::vector<ClaimPrefix>{ClaimPrefix{}};
    if (!info.fd) return std::nullopt;
    std::vector<ClaimPrefix> out;
    for (const char* file : {"index.json", "repodata_record.json"})
        if (auto c = json_claim(info.fd.get(), file, display / "info" / file)) out.push_back(std::move(*c));
    return out;
}

ClaimPrefix package_fields(const PackageName& p) { return {p.name, p.version, p.build}; }

bool claims_package(const ClaimPrefix& claim, const ClaimPrefix& fields) {
    return std::equal(claim.begin(), claim.end(), fields.begin());  // claim is at most 3 long
}

}  // namespace

void remove_tree_at(int dirfd, const std::string& name, std::size_t max_depth) {
    if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;  // a file, a link
    if (errno != EISDIR && errno != EPERM) throw_errno("unlink " + name);
    fs::OpenedDir d = fs::open_dir_at(dirfd, name);
    if (d.kind == fs::FileKind::Missing) return;
    if (!d.fd) throw std::system_error(ENOTDIR, std::generic_category(), "remove " + name);
    if (max_depth == 0) throw std::system_error(ELOOP, std::generic_category(), "remove " + name + ": too deep");
    const struct stat st = fs::fstat_or_throw(d.fd.get(), "remove " + name);
    if ((st.st_mode & 0700) != 0700 && ::fchmod(d.fd.get(), 0700) != 0) throw_errno("chmod " + name);
    for (const auto& child : fs::list_dir(d.fd.get(), name)) remove_tree_at(d.fd.get(), child, max_depth - 1);
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) throw_errno("rmdir " + name);
}

// ---- Staging ----

Staging::Staging(fs::Fd root, std::string name, fs::Fd dir, fs::Fd folder, std::filesystem::path path,
                 std::shared_ptr<std::set<std::string>> live)
    : root_(std::move(root)), name_(std::move(name)), dir_(std::move(dir)), folder_(std::move(folder)),
      path_(std::move(path)), live_(std::move(live)) {}

Staging::~Staging() {
    if (!root_) return;  // moved from
    // Best effort: what cannot be removed now is a leftover that
    // clean_staging removes on the next run.
    try {
        remove_tree_at(root_.get(), name_);
    } catch (const std::exception&) {
    }
    live_->erase(name_);
}

fs::Fd Staging::new_archive_file() const {
    fs::Fd fd = fs::open_at_raw(dir_.get(), ".", O_TMPFILE | O_RDWR, 0644);
    if (!fd) throw_errno("O_TMPFILE in " + path_.string());
    return fd;
}

// ---- PackageDir ----

PackageDir PackageDir::open(const std::filesystem::path& path, CreateIfMissing create) {
    std::filesystem::path p = path.lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    const std::string leaf = p.filename().string();
    if (leaf.empty() || leaf == "." || leaf == "..")
        throw std::system_error(EINVAL, std::generic_category(), "package directory " + path.string());
    const std::filesystem::path parent = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    if (create == CreateIfMissing::Yes) std::filesystem::create_directories(parent);
    const fs::Fd pfd = fs::open_dir(parent);
    fs::Fd fd;
    if (create == CreateIfMissing::Yes) {
        fd = dir_made_at(pfd.get(), leaf, 0755, p);
        const fs::Fd urls = fs::open_at_raw(fd.get(), "urls.txt", O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0644);
        if (!urls) throw_errno(p.string() + "/urls.txt");
    } else {
        fs::OpenedDir d = fs::open_dir_at(pfd.get(), leaf);
        if (!d.fd)
            throw std::system_error(d.kind == fs::FileKind::Missing ? ENOENT : ENOTDIR, std::generic_category(),
                                    fmt::format("package directory {} is {}", p.string(), fs::describe(d.kind)));
        fd = std::move(d.fd);
    }
    const struct stat st = fs::fstat_or_throw(fd.get(), p.string());
    return PackageDir(std::move(fd), p, st.st_dev, st.st_ino);
}

// PKGS/.condaguard holds the lock and the staging folders: one made by
// someone else (before the gate first ran here) could be used to unlink the
// lock or watch the staging, so it must be ours (or root's) and writable by
// nobody else.
fs::Fd PackageDir::guard_dir() const {
    fs::Fd d = dir_made_at(fd_.get(), ".condaguard", 0700, path_ / ".condaguard");
    const struct stat st = fs::fstat_or_throw(d.get(), (path_ / ".condaguard").string());
    auto why = fs::foreign_owner(st);
    if (!why) why = fs::writable_by_others(st);
    if (why)
        throw std::system_error(EPERM, std::generic_category(),
                                fmt::format("{} is {}: remove it or fix it", (path_ / ".condaguard").string(), *why));
    return d;
}

fs::Fd PackageDir::staging_root() const {
    const fs::Fd guard = guard_dir();
    return dir_made_at(guard.get(), "staging", 0700, path_ / ".condaguard" / "staging");
}

PackageDirLock PackageDir::lock(std::chrono::milliseconds wait) const {
    const fs::Fd guard = guard_dir();
    fs::Fd fd = fs::open_at_raw(guard.get(), "lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
    if (!fd) throw_errno((path_ / ".condaguard" / "lock").string());
    const auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) throw_errno("flock " + (path_ / ".condaguard" / "lock").string());
        if (std::chrono::steady_clock::now() >= until)
            throw PackageDirBusy(fmt::format("{} is in use by another run (waited {} s for its lock)",
                                             path_.string(), std::chrono::duration_cast<std::chrono::seconds>(wait).count()));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return PackageDirLock(std::move(fd), dev_, ino_);
}

void PackageDir::check_held(const PackageDirLock& held) const {
    if (!held.fd_ || held.dev_ != dev_ || held.ino_ != ino_)
        throw std::logic_error("package directory used without its lock");
}

void PackageDir::clean_staging(const PackageDirLock& held) const {
    check_held(held);
    const fs::Fd root = staging_root();
    for (const auto& name : fs::list_dir(root.get(), "staging"))
        if (!live_->contains(name)) remove_tree_at(root.get(), name);
}

Staging PackageDir::stage(const PackageDirLock& held) const {
    check_held(held);
    fs::Fd root = staging_root();
    for (int attempt = 0; attempt < 100; ++attempt) {
        const std::string name = random_name();
        if (::mkdirat(root.get(), name.c_str(), 0700) != 0) {
            if (errno == EEXIST) continue;
            throw_errno("mkdir staging");
        }
        fs::Fd dir = dir_made_at(root.get(), name, 0700, name);
        fs::Fd folder = dir_made_at(dir.get(), "folder", 0700, "folder");
        live_->insert(name);
        const auto path = path_ / ".condaguard" / "staging" / name;
        return Staging(std::move(root), name, std::move(dir), std::move(folder), path, live_);
    }
    throw std::system_error(EEXIST, std::generic_category(), "no free staging name");
}

void PackageDir::place(const PackageDirLock& held, Staging& staging, const PlaceRequest& req) const {
    prepare(held, staging, req);
    sync(held, {&staging});
    publish(held, staging, req);
}

void PackageDir::prepare(const PackageDirLock& held, Staging& staging, const PlaceRequest& req) const {
    check_held(held);
    if (staging.stage_ != Staging::Stage::Fresh || !staging.dir_)
        throw std::logic_error("staging directory already prepared");
    (void)package_of(req.fn);
    if (req.url.empty() || req.url.find_first_of("\r\n") != std::string::npos)
        throw std::invalid_argument("url is empty or holds a line break");
    staging.stage_ = Staging::Stage::Spent;  // until this step is whole
    const int dir = staging.dir_.get();
    auto step = [&](PlaceStep s) {
        if (req.after_step) req.after_step(s);
    };

    // 1. Everything in staging first.
    const struct stat st = fs::fstat_or_throw(req.archive_fd, "archive");
    if (!S_ISREG(st.st_mode)) throw std::invalid_argument("archive is not a regular file");
    const struct stat staging_st = fs::fstat_or_throw(dir, "staging");
    bool linked = false;
    if (st.st_nlink == 0 && st.st_dev == staging_st.st_dev) {
        // An O_TMPFILE: linked through /proc (linkat AT_EMPTY_PATH needs a capability).
        const std::string proc = fmt::format("/proc/self/fd/{}", req.archive_fd);
        linked = ::linkat(AT_FDCWD, proc.c_str(), dir, "archive", AT_SYMLINK_FOLLOW) == 0;
    }
    if (!linked) {
        const fs::Fd out = fs::open_at_raw(dir, "archive", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
        if (!out) throw_errno("staging archive");
        copy_all(req.archive_fd, out.get(), static_cast<std::uint64_t>(st.st_size), "copy archive");
    }
    step(PlaceStep::ArchiveStaged);
    if (req.sig_bytes) {
        const fs::Fd out = fs::open_at_raw(dir, "sig", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
        if (!out) throw_errno("staging sig");
        fs::write_all(out.get(), *req.sig_bytes, "staging sig");
    }
    step(PlaceStep::SigStaged);
    {
        fs::OpenedDir info = fs::open_dir_at(staging.folder_.get(), "info");
        if (!info.fd) throw std::runtime_error("the staged folder's info is " + std::string(fs::describe(info.kind)));
        if (fs::kind_at(info.fd.get(), "index.json") != fs::FileKind::Regular)
            throw std::runtime_error("the staged folder has no info/index.json");
        // A package must not ship it (CEP 34); conda overwrites it, so do we.
        if (::unlinkat(info.fd.get(), "repodata_record.json", 0) != 0 && errno != ENOENT)
            throw_errno("staged info/repodata_record.json");
        const fs::Fd out =
            fs::open_at_raw(info.fd.get(), "repodata_record.json", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
        if (!out) throw_errno("staged info/repodata_record.json");
        fs::write_all(out.get(), req.repodata_record_json, "info/repodata_record.json");
    }
    step(PlaceStep::RecordWritten);
    // stage() made the folder 0700 (private while it is filled); conda's own
    // are 0755, and every user of a shared package cache must read it. What
    // is inside keeps the modes extract_package gave (as conda's extraction).
    if (::fchmod(staging.folder_.get(), 0755) != 0) throw_errno("chmod staged folder");
    staging.prepared_fn_ = req.fn;
    staging.prepared_sig_ = req.sig_bytes.has_value();
    staging.stage_ = Staging::Stage::Prepared;
}

// syncfs syncs the whole file system the staging directories are on (the
// package directory's): once for all of them.
void PackageDir::sync(const PackageDirLock& held, const std::vector<Staging*>& prepared) const {
    check_held(held);
    for (const Staging* st : prepared) {
        if (st->stage_ != Staging::Stage::Prepared) throw std::logic_error("staging directory not prepared");
        if (st->live_ != live_) throw std::logic_error("staging directory of another package directory");
    }
    if (::syncfs(fd_.get()) != 0) {
        // syncfs reports an error once per open file: a second try would
        // succeed without the data on disk, so these can never be published.
        for (Staging* st : prepared) st->stage_ = Staging::Stage::Spent;
        throw_errno("syncfs " + path_.string());
    }
    for (Staging* st : prepared) st->stage_ = Staging::Stage::Synced;
}

void PackageDir::publish(const PackageDirLock& held, Staging& staging, const PlaceRequest& req) const {
    check_held(held);
    if (staging.stage_ != Staging::Stage::Synced || !staging.dir_)
        throw std::logic_error("staging directory not prepared and synced");
    if (req.fn != staging.prepared_fn_ || req.sig_bytes.has_value() != staging.prepared_sig_)
        throw std::logic_error("publish asked for another package than prepare staged");
    if (req.url.empty() || req.url.find_first_of("\r\n") != std::string::npos)
        throw std::invalid_argument("url is empty or holds a line break");
    staging.stage_ = Staging::Stage::Spent;
    const PackageName pkg = package_of(req.fn);
    const std::string stem = pkg.stem();
    const std::string sig_name = req.fn + ".sig";
    const int dir = staging.dir_.get();
    const int pkgs = fd_.get();
    auto step = [&](PlaceStep s) {
        if (req.after_step) req.after_step(s);
    };
    step(PlaceStep::Synced);

    // 2. The old folder leaves the top level before its archive changes
    // (gone in between, moved aside as a claimant of another package: fine).
    if (fs::kind_at(pkgs, stem) != fs::FileKind::Missing) {
        if (::renameat2(pkgs, stem.c_str(), dir, "old-folder", RENAME_NOREPLACE) != 0 && errno != ENOENT)
            throw_errno("rename " + stem);
        fsync_dir(pkgs, path_.string());
    }
    step(PlaceStep::OldFolderMovedOut);

    // 3. Archive and signature: rename replaces a file or a link (never
    // followed); anything else there is moved out first.
    auto put = [&](const char* from, const std::string& to, const char* aside) {
        const fs::FileKind k = fs::kind_at(pkgs, to);
        if (k != fs::FileKind::Missing && k != fs::FileKind::Regular && k != fs::FileKind::Symlink)
            rename_at(pkgs, to, dir, aside, RENAME_NOREPLACE, to);
        rename_at(dir, from, pkgs, to, 0, to);
        fsync_dir(pkgs, path_.string());
    };
    if (!req.sig_bytes && fs::kind_at(pkgs, sig_name) != fs::FileKind::Missing) {
        // No signature goes with this archive: an old one must not stay beside it.
        rename_at(pkgs, sig_name, dir, "old-sig", RENAME_NOREPLACE, sig_name);
        fsync_dir(pkgs, path_.string());
    }
    put("archive", req.fn, "old-archive");
    step(PlaceStep::ArchivePlaced);
    if (req.sig_bytes) put("sig", sig_name, "old-sig");
    step(PlaceStep::SigPlaced);

    // 4. The folder, last.
    rename_at(dir, "folder", pkgs, stem, RENAME_NOREPLACE, stem);
    fsync_dir(pkgs, path_.string());
    step(PlaceStep::FolderPlaced);

    // 5. urls.txt, one append.
    {
        const fs::Fd urls = fs::open_at_raw(pkgs, "urls.txt", O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0644);
        if (!urls) throw_errno(path_.string() + "/urls.txt");
        const std::string line = req.url + "\n";
        const ssize_t n = ::write(urls.get(), line.data(), line.size());
        if (n != static_cast<ssize_t>(line.size())) throw_errno(path_.string() + "/urls.txt");
        if (::fdatasync(urls.get()) != 0) throw_errno(path_.string() + "/urls.txt");
    }
    step(PlaceStep::UrlAppended);
}

CachedEntry PackageDir::inspect(std::string_view fn) const {
    const PackageName pkg = package_of(fn);
    CachedEntry out{.archive = fs::kind_at(fd_.get(), std::string(fn)),
                    .sig = fs::kind_at(fd_.get(), std::string(fn) + ".sig"),
                    .folder = fs::kind_at(fd_.get(), pkg.stem())};
    if (out.folder == fs::FileKind::Directory) {
        const fs::OpenedDir folder = fs::open_dir_at(fd_.get(), pkg.stem());
        if (folder.fd) {
            const fs::OpenedDir info = fs::open_dir_at(folder.fd.get(), "info");
            out.folder_has_index_json =
                info.fd && fs::kind_at(info.fd.get(), "index.json") == fs::FileKind::Regular;
        }
    }
    return out;
}

fs::OpenedFile PackageDir::open_cached_tarball(std::string_view fn) const {
    (void)package_of(fn);
    return fs::open_untrusted_at(fd_.get(), std::string(fn), path_ / fn);
}

fs::OpenedFile PackageDir::open_cached_sig(std::string_view fn) const {
    (void)package_of(fn);
    const std::string sig = std::string(fn) + ".sig";
    return fs::open_untrusted_at(fd_.get(), sig, path_ / sig);
}

void PackageDir::remove_folder(const PackageDirLock& held, std::string_view folder) const {
    check_held(held);
    check_plain_name(folder, "folder");
    if (folder == ".condaguard" || folder == "urls.txt")
        throw std::invalid_argument(fmt::format("{} is not a package folder", folder));
    const std::string name(folder);
    if (fs::kind_at(fd_.get(), name) == fs::FileKind::Missing) return;
    // Out of conda's sight at once, then deleted at leisure.
    Staging aside = stage(held);
    rename_at(fd_.get(), name, aside.dir_.get(), "removed", RENAME_NOREPLACE, name);
    fsync_dir(fd_.get(), path_.string());
    remove_tree_at(aside.dir_.get(), "removed");
}

std::optional<std::string> PackageDir::move_aside(const PackageDirLock& held, Staging& staging,
                                                  std::string_view name) const {
    check_held(held);
    check_plain_name(name, "folder");
    if (name == ".condaguard" || name == "urls.txt")
        throw std::invalid_argument(fmt::format("{} is not a package folder", name));
    if (!staging.dir_ || staging.stage_ != Staging::Stage::Fresh)
        throw std::logic_error("staging directory already placed");
    const std::string from(name);
    const std::string aside = fmt::format("aside-{}", staging.asides_++);
    if (::renameat2(fd_.get(), from.c_str(), staging.dir_.get(), aside.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno(fmt::format("move {} out of {}", from, path_.string()));
    }
    fsync_dir(fd_.get(), path_.string());
    return aside;
}

void PackageDir::put_back(const PackageDirLock& held, Staging& staging, const std::string& aside,
                          std::string_view name) const {
    check_held(held);
    check_plain_name(name, "folder");
    check_plain_name(aside, "staged entry");
    rename_at(staging.dir_.get(), aside, fd_.get(), std::string(name), RENAME_NOREPLACE, std::string(name));
    fsync_dir(fd_.get(), path_.string());
}

void PackageDir::remove_entry(const PackageDirLock& held, std::string_view fn, RemoveArchive archive) const {
    const PackageName pkg = package_of(fn);
    remove_folder(held, pkg.stem());
    if (archive == RemoveArchive::Yes) {
        remove_folder(held, std::string(fn) + ".sig");
        remove_folder(held, fn);
    }
}

ClaimScan PackageDir::scan_claims() const {
    const std::vector<std::string> names = fs::list_dir(fd_.get(), path_.string());
    if (names.size() > max_claimant_scan)
        throw std::runtime_error(fmt::format("{} has more than {} entries", path_.string(), max_claimant_scan));
    ClaimScan out;
    for (const auto& name : names) {
        auto claims = folder_claims(fd_.get(), name, path_ / name);
        if (!claims || claims->empty()) continue;
        const std::size_t at = out.folders_.size();
        out.folders_.push_back(name);
        for (auto& c : *claims) {
            auto& list = out.by_prefix_[std::move(c)];
            if (list.empty() || list.back() != at) list.push_back(at);
        }
    }
    return out;
}

std::vector<std::string> ClaimScan::claimants(const PackageName& package) const {
    const ClaimPrefix fields = package_fields(package);
    std::vector<std::size_t> found;
    for (std::size_t n = 0; n <= fields.size(); ++n)
        if (const auto it = by_prefix_.find(ClaimPrefix(fields.begin(), fields.begin() + static_cast<long>(n)));
            it != by_prefix_.end())
            found.insert(found.end(), it->second.begin(), it->second.end());
    std::ranges::sort(found);
    const auto dup = std::ranges::unique(found);
    found.erase(dup.begin(), dup.end());
    std::vector<std::string> out;
    out.reserve(found.size());
    for (const std::size_t i : found) out.push_back(folders_[i]);
    return out;
}

bool PackageDir::claims(std::string_view name, const PackageName& package) const {
    const std::string entry(name);
    const auto found = folder_claims(fd_.get(), entry, path_ / entry);
    if (!found) return false;
    const ClaimPrefix fields = package_fields(package);
    return std::ranges::any_of(*found, [&](const ClaimPrefix& c) { return claims_package(c, fields); });
}

std::vector<std::string> PackageDir::find_claimants(const PackageName& package) const {
    return scan_claims().claimants(package);
}

}  // namespace condaguard
