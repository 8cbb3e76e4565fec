// One conda package directory (pkgs_dirs, spec conda-formats §3), in conda's
// own layout so that conda reuses what the gate placed there (§3.3 rule 1):
//
//   PKGS/urls.txt                 magic file, one URL a line, appended
//   PKGS/FN                       the verified archive (FN = NAME-VERSION-BUILD.conda|.tar.bz2)
//   PKGS/FN.sig                   its signature
//   PKGS/STEM/                    the extracted archive, plus info/repodata_record.json
//   PKGS/.condaguard/lock         flock: one run at a time
//   PKGS/.condaguard/staging/XXXXXXXX/   private (0700) work directories
//
// Everything below PKGS is reached through directory descriptors, never
// following a symbolic link: a link planted where an entry goes is moved
// away and removed, not written through. Nothing is built at PKGS's top
// level: conda links any top-level folder whose info/ matches a record
// (conda-plugin §4), so folders are made inside a staging directory and
// renamed into place. Nothing found here is trusted for being here: the
// caller re-verifies what open_cached_tarball() returns.
#pragma once

#include <condaguard/package/name.hpp>
#include <condaguard/sys/fs.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

enum class CreateIfMissing { No, Yes };
enum class RemoveArchive { No, Yes };

// The package directory is locked by another run and stayed so.
class PackageDirBusy : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The steps of PackageDir::place, in order, for PlaceRequest::after_step.
enum class PlaceStep {
    ArchiveStaged,     // STAGING/archive holds the archive
    SigStaged,         // STAGING/sig holds the signature
    RecordWritten,     // STAGING/folder/info/repodata_record.json written
    Synced,            // the staging directory's contents are on disk
    OldFolderMovedOut, // whatever was at PKGS/STEM is now inside STAGING (or nothing was there)
    ArchivePlaced,     // PKGS/FN is the new archive
    SigPlaced,         // PKGS/FN.sig is the new signature
    FolderPlaced,      // PKGS/STEM is the new folder
    UrlAppended,       // urls.txt has the URL line
};

struct PlaceRequest {
    std::string fn;  // NAME-VERSION-BUILD.conda or .tar.bz2
    // The verified archive. When it is an unlinked file on the package
    // directory's file system (O_TMPFILE, see Staging::new_archive_file) it
    // is linked into place; otherwise its bytes are copied (from offset 0,
    // the descriptor's offset untouched).
    int archive_fd = -1;
    // FN.sig's bytes; none for a package of a channel unsigned by policy: then
    // any FN.sig there is moved out before the archive is placed.
    std::optional<std::string> sig_bytes;
    std::string repodata_record_json;  // written as STEM/info/repodata_record.json
    std::string url;                   // the line for urls.txt (no newline)
    // Called after each step (tests use it to stop a run at every step).
    std::function<void(PlaceStep)> after_step;
};

// What the directory holds for one file name, seen without following links.
struct CachedEntry {
    fs::FileKind archive = fs::FileKind::Missing;  // PKGS/FN
    fs::FileKind sig = fs::FileKind::Missing;      // PKGS/FN.sig
    fs::FileKind folder = fs::FileKind::Missing;   // PKGS/STEM
    bool folder_has_index_json = false;            // STEM/info/index.json is a regular file
};

class PackageDir;

// What the top-level folders of a package directory claimed when
// PackageDir::scan_claims read them.
class ClaimScan {
public:
    // The folders that claim `package`, in the order the directory listed them.
    std::vector<std::string> claimants(const PackageName& package) const;

private:
    friend class PackageDir;
    std::vector<std::string> folders_;
    // The leading fields of (name, version, build) a folder's JSON file
    // names (none: it claims any package) -> indexes into folders_, ascending.
    std::map<std::vector<std::string>, std::vector<std::size_t>> by_prefix_;
};

// Holds PKGS/.condaguard/lock (flock, exclusive) until destroyed.
class PackageDirLock {
public:
    PackageDirLock(PackageDirLock&&) noexcept = default;
    PackageDirLock& operator=(PackageDirLock&&) noexcept = default;

private:
    friend class PackageDir;
    PackageDirLock(fs::Fd fd, dev_t dev, ino_t ino) : fd_(std::move(fd)), dev_(dev), ino_(ino) {}
    fs::Fd fd_;
    dev_t dev_ = 0;  // the package directory it locks
    ino_t ino_ = 0;
};

// A private directory PKGS/.condaguard/staging/XXXXXXXX (0700) with an empty
// folder/ to extract into. Removed with everything in it when destroyed.
class Staging {
public:
    Staging(Staging&&) noexcept = default;
    Staging& operator=(Staging&&) = delete;
    ~Staging();

    int folder_fd() const noexcept { return folder_.get(); }
    const std::filesystem::path& path() const noexcept { return path_; }
    // An unlinked file (O_TMPFILE, 0644) in the staging directory, on the
    // package directory's file system, for the fetcher to write the archive
    // into: place() links it instead of copying.
    fs::Fd new_archive_file() const;

private:
    friend class PackageDir;
    Staging(fs::Fd root, std::string name, fs::Fd dir, fs::Fd folder, std::filesystem::path path,
            std::shared_ptr<std::set<std::string>> live);
    fs::Fd root_;  // PKGS/.condaguard/staging
    std::string name_;
    fs::Fd dir_;
    fs::Fd folder_;
    std::filesystem::path path_;
    std::shared_ptr<std::set<std::string>> live_;  // the owner's staging names in use
    enum class Stage { Fresh, Prepared, Synced, Spent };
    Stage stage_ = Stage::Fresh;                   // how far place() has taken it
    std::string prepared_fn_;                      // what prepare() staged: publish() must be asked for it
    bool prepared_sig_ = false;
    std::size_t asides_ = 0;                       // entries move_aside put here
};

class PackageDir {
public:
    // Opens the directory `path` (its last component must not be a symbolic
    // link; links above it are followed, as for any path the user names).
    // With CreateIfMissing::Yes, makes it (and its parents) and its magic
    // urls.txt when missing. Throws std::system_error.
    static PackageDir open(const std::filesystem::path& path, CreateIfMissing create);

    const std::filesystem::path& path() const noexcept { return path_; }
    int fd() const noexcept { return fd_.get(); }

    // Takes the lock: at once when free, else waiting up to `wait`, then
    // throws PackageDirBusy.
    PackageDirLock lock(std::chrono::milliseconds wait = std::chrono::seconds(60)) const;

    // Removes every staging directory left by interrupted runs (all but this
    // object's live ones). Needs the lock.
    void clean_staging(const PackageDirLock& held) const;

    // A fresh staging directory. Needs the lock.
    Staging stage(const PackageDirLock& held) const;

    // Puts the staged folder (extracted by the caller into
    // staging.folder_fd()), the archive, its signature and the record into
    // place, in this order, each step durable before the next:
    //   1. STAGING/archive (linked or copied), STAGING/sig,
    //      STAGING/folder/info/repodata_record.json, STAGING/folder made
    //      0755 (as conda's own folders: readable by every user of a shared
    //      cache; what is inside keeps extract_package's modes); syncfs;
    //   2. whatever is at PKGS/STEM moves into STAGING (out of conda's sight);
    //   3. STAGING/archive -> PKGS/FN, STAGING/sig -> PKGS/FN.sig (rename
    //      replaces a file, or a link itself; anything else there is moved
    //      out first);
    //   4. STAGING/folder -> PKGS/STEM (RENAME_NOREPLACE);
    //   5. one O_APPEND write of URL LF to urls.txt.
    // So at every instant a folder at PKGS/STEM sits beside the archive and
    // signature it came with: the old folder leaves before the old archive
    // is replaced, and the new one arrives after the new archive and sig.
    // A crash leaves at most a missing folder (fetched again) and a staging
    // directory (clean_staging). Needs the lock; the staging directory is
    // spent afterwards. Throws std::invalid_argument for a bad fn or url,
    // std::system_error for I/O errors.
    // place() is prepare(), sync() and publish() of one package; a run
    // placing many prepares each, syncs once, then publishes each, so that
    // the file system is synced once, not once a package. publish() refuses
    // a staging directory that was not prepared and synced.
    void place(const PackageDirLock& held, Staging& staging, const PlaceRequest& request) const;
    void prepare(const PackageDirLock& held, Staging& staging, const PlaceRequest& request) const;  // step 1 less syncfs
    void sync(const PackageDirLock& held, const std::vector<Staging*>& prepared) const;           // syncfs, once
    void publish(const PackageDirLock& held, Staging& staging, const PlaceRequest& request) const;  // steps 2-5

    // What the directory holds for `fn`.
    CachedEntry inspect(std::string_view fn) const;

    // PKGS/FN opened with fs::open_untrusted_at (a link, a FIFO... throws
    // NotRegularFile): the caller hashes and verifies it.
    fs::OpenedFile open_cached_tarball(std::string_view fn) const;
    fs::OpenedFile open_cached_sig(std::string_view fn) const;

    // Removes PKGS/STEM (moved into a staging directory first, then deleted
    // there without following links), and with RemoveArchive::Yes also
    // PKGS/FN and PKGS/FN.sig. Missing entries are fine. Needs the lock.
    void remove_entry(const PackageDirLock& held, std::string_view fn, RemoveArchive archive) const;
    // Removes the top-level entry `folder` (a name find_claimants gave) the
    // same way; not .condaguard or urls.txt.
    void remove_folder(const PackageDirLock& held, std::string_view folder) const;

    // Moves the top-level entry `name` (a name find_claimants gave; not
    // .condaguard or urls.txt) into `staging`, out of conda's sight, with
    // one rename that never follows a link (a link is moved as a link), and
    // syncs the directory. Returns its name inside the staging directory, for
    // put_back; std::nullopt when it was already gone. What stays there is
    // deleted with the staging directory (remove_tree_at). Needs the lock.
    // Throws std::system_error with the rename's errno (EACCES, EROFS: the
    // directory cannot be written).
    std::optional<std::string> move_aside(const PackageDirLock& held, Staging& staging, std::string_view name) const;
    // Undoes move_aside: `aside` back to the top-level `name`, never over
    // anything that appeared there since (RENAME_NOREPLACE).
    void put_back(const PackageDirLock& held, Staging& staging, const std::string& aside, std::string_view name) const;

    // Top-level folders (links skipped, as conda skips them) that conda
    // could link for this package whatever their name: those whose
    // info/index.json or info/repodata_record.json names this name, version
    // and build, and, failing closed, those where either file is there but
    // cannot be read as a JSON object naming another package (a link, over
    // 16 MiB, not parsable by sys/json, a field missing or not a string
    // before one names another package). Throws std::runtime_error past
    // max_claimant_scan top-level entries. .condaguard is looked at like
    // any folder (conda would take it too, were info/index.json put there),
    // and remove_folder refuses it.
    // scan_claims() reads every folder once and answers for any package:
    // a run asking for many packages scans once, not once a package.
    // claims() reads the one top-level entry `name` again: whether it still
    // claims the package (false when it is gone or no package folder).
    ClaimScan scan_claims() const;
    std::vector<std::string> find_claimants(const PackageName& package) const;
    bool claims(std::string_view name, const PackageName& package) const;

private:
    PackageDir(fs::Fd fd, std::filesystem::path path, dev_t dev, ino_t ino)
        : fd_(std::move(fd)), path_(std::move(path)), dev_(dev), ino_(ino) {}
    void check_held(const PackageDirLock& held) const;
    fs::Fd guard_dir() const;    // PKGS/.condaguard, made when missing
    fs::Fd staging_root() const; // PKGS/.condaguard/staging, made when missing

    fs::Fd fd_;
    std::filesystem::path path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    std::shared_ptr<std::set<std::string>> live_ = std::make_shared<std::set<std::string>>();
};

// Most top-level entries find_claimants looks at.
inline constexpr std::size_t max_claimant_scan = 200000;

// Removes `name` inside `dirfd` and everything below it, never following a
// link (each level opened with O_NOFOLLOW), at most `max_depth` levels
// deep. Missing is fine. Throws std::system_error.
void remove_tree_at(int dirfd, const std::string& name, std::size_t max_depth = 256);

}  // namespace condaguard
