// conda's package directory: the layout place() leaves, the lock, staging,
// planted links and folders (A14), and a crash at every step of place().
#include <condaguard/install/pkgs_dir.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <condaguard/package/extract.hpp>
#include <condaguard/trust/digest.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

const std::string kFn = "pkg-1.0-0.conda";
const std::string kStem = "pkg-1.0-0";
const std::string kUrl = "https://example.invalid/chan/noarch/" + kFn;

std::set<std::string> top_level(const stdfs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : stdfs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
}

std::string record_json(const std::string& tag) {
    return R"({"name": "pkg", "version": "1.0", "build": "0", "build_number": 0, "fn": ")" + kFn +
           R"(", "url": ")" + kUrl + R"(", "tag": ")" + tag + "\"}";
}

struct PkgsDirTest : ::testing::Test {
    TempDir tmp;
    stdfs::path pkgs = tmp / "pkgs";
    // Two packages with one file name and different bytes.
    stdfs::path old_pkg = build_package(tmp / "old", PackageSpec{.files = {{"bin/tool", "old"}}});
    stdfs::path new_pkg = build_package(tmp / "new", PackageSpec{.files = {{"bin/tool", "new"}}});

    // Extracts `archive` into a fresh staging directory and places it.
    static void place(const PackageDir& dir, const PackageDirLock& held, const stdfs::path& archive,
                      const std::string& tag, std::function<void(PlaceStep)> after_step = {}) {
        Staging st = dir.stage(held);
        const fs::Fd in(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) throw std::runtime_error("open for test");
        const std::string bytes = read_file(archive);
        const TrustedRecord rec{.size = bytes.size(), .sha256 = sha256_bytes(bytes), .md5 = std::nullopt};
        extract_package(in.get(), *parse_package_file_name(kFn), rec, st.folder_fd());
        dir.place(held, st, PlaceRequest{.fn = kFn, .archive_fd = in.get(), .sig_bytes = tag + "-sig\n",
                                         .repodata_record_json = record_json(tag), .url = kUrl,
                                         .after_step = std::move(after_step)});
    }

    // The complete entry of `tag` ("old" or "new") is in place.
    void expect_entry(const std::string& tag) const {
        EXPECT_EQ(read_file(pkgs / kFn), read_file(tag == "old" ? old_pkg : new_pkg));
        EXPECT_EQ(read_file(pkgs / (kFn + ".sig")), tag + "-sig\n");
        EXPECT_EQ(read_file(pkgs / kStem / "bin/tool"), tag);
        EXPECT_EQ(read_file(pkgs / kStem / "info/repodata_record.json"), record_json(tag));
        EXPECT_TRUE(stdfs::is_regular_file(stdfs::symlink_status(pkgs / kStem / "info/index.json")));
    }

    bool staging_empty() const { return stdfs::is_empty(pkgs / ".condaguard" / "staging"); }
};

TEST_F(PkgsDirTest, place_produces_condas_layout) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt"}));
    const PackageDirLock held = dir.lock();
    place(dir, held, new_pkg, "new");
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard", kFn, kFn + ".sig", kStem}));
    expect_entry("new");
    EXPECT_EQ(read_file(pkgs / "urls.txt"), kUrl + "\n");
    EXPECT_TRUE(staging_empty());
    const CachedEntry e = dir.inspect(kFn);
    EXPECT_EQ(e.archive, fs::FileKind::Regular);
    EXPECT_EQ(e.sig, fs::FileKind::Regular);
    EXPECT_EQ(e.folder, fs::FileKind::Directory);
    EXPECT_TRUE(e.folder_has_index_json);
    EXPECT_EQ(dir.open_cached_tarball(kFn).st.st_size, static_cast<off_t>(read_file(new_pkg).size()));
    EXPECT_EQ(file_mode(pkgs / ".condaguard"), 0700u);
}

TEST_F(PkgsDirTest, place_replaces_an_existing_entry) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    const PackageDirLock held = dir.lock();
    place(dir, held, old_pkg, "old");
    write_file(pkgs / kStem / "lib" / "stray", "left by someone");
    place(dir, held, new_pkg, "new");
    expect_entry("new");
    EXPECT_FALSE(stdfs::exists(pkgs / kStem / "lib" / "stray"));
    EXPECT_EQ(read_file(pkgs / "urls.txt"), kUrl + "\n" + kUrl + "\n");
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard", kFn, kFn + ".sig", kStem}));
    EXPECT_TRUE(staging_empty());
}

TEST_F(PkgsDirTest, place_links_the_fetchers_unlinked_file) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    const PackageDirLock held = dir.lock();
    Staging st = dir.stage(held);
    const fs::Fd tmpfile = st.new_archive_file();
    const std::string bytes = read_file(new_pkg);
    fs::write_all(tmpfile.get(), bytes, "test");
    const TrustedRecord rec{.size = bytes.size(), .sha256 = sha256_bytes(bytes), .md5 = std::nullopt};
    extract_package(tmpfile.get(), *parse_package_file_name(kFn), rec, st.folder_fd());
    dir.place(held, st, PlaceRequest{.fn = kFn, .archive_fd = tmpfile.get(), .sig_bytes = "new-sig\n",
                                     .repodata_record_json = record_json("new"), .url = kUrl});
    struct stat a {}, b {};
    ASSERT_EQ(::fstat(tmpfile.get(), &a), 0);
    ASSERT_EQ(::stat((pkgs / kFn).c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);  // linked, not copied
    expect_entry("new");
}

// A run placing many packages stages each, syncs once, then publishes each;
// nothing reaches the top level before the sync, and publishing out of
// that order is refused.
TEST_F(PkgsDirTest, publish_needs_prepare_then_sync) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    const PackageDirLock held = dir.lock();
    Staging st = dir.stage(held);
    const fs::Fd in(::open(new_pkg.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(in);
    const std::string bytes = read_file(new_pkg);
    const TrustedRecord rec{.size = bytes.size(), .sha256 = sha256_bytes(bytes), .md5 = std::nullopt};
    extract_package(in.get(), *parse_package_file_name(kFn), rec, st.folder_fd());
    const PlaceRequest req{.fn = kFn, .archive_fd = in.get(), .sig_bytes = "new-sig\n",
                           .repodata_record_json = record_json("new"), .url = kUrl};
    EXPECT_THROW(dir.sync(held, {&st}), std::logic_error);  // not prepared
    EXPECT_THROW(dir.publish(held, st, req), std::logic_error);
    dir.prepare(held, st, req);
    EXPECT_THROW(dir.prepare(held, st, req), std::logic_error);
    EXPECT_THROW(dir.publish(held, st, req), std::logic_error);  // not synced
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard"}));
    dir.sync(held, {&st});
    PlaceRequest other = req;
    other.fn = "other-1.0-0.conda";
    EXPECT_THROW(dir.publish(held, st, other), std::logic_error);  // not what prepare staged
    other = req;
    other.sig_bytes.reset();
    EXPECT_THROW(dir.publish(held, st, other), std::logic_error);
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard"}));
    dir.publish(held, st, req);
    expect_entry("new");
    EXPECT_THROW(dir.publish(held, st, req), std::logic_error);  // spent
}

TEST_F(PkgsDirTest, lock_excludes_a_second_locker) {
    Deadline d(20);
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    std::optional<PackageDirLock> held = dir.lock();
    // Another open of the same directory (another open file description).
    const PackageDir again = PackageDir::open(pkgs, CreateIfMissing::No);
    EXPECT_THROW(again.lock(std::chrono::milliseconds(100)), PackageDirBusy);
    // Another process.
    auto child_locks = [&] {
        const pid_t pid = ::fork();
        if (pid == 0) {
            try {
                const PackageDir mine = PackageDir::open(pkgs, CreateIfMissing::No);
                const PackageDirLock l = mine.lock(std::chrono::milliseconds(200));
                ::_exit(0);
            } catch (const PackageDirBusy&) {
                ::_exit(3);
            } catch (const std::exception&) {
                ::_exit(4);
            }
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    };
    EXPECT_EQ(child_locks(), 3);
    held.reset();
    EXPECT_EQ(child_locks(), 0);
    EXPECT_NO_THROW(again.lock(std::chrono::milliseconds(100)));
}

TEST_F(PkgsDirTest, staging_is_never_at_the_top_level) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    const PackageDirLock held = dir.lock();
    {
        const Staging st = dir.stage(held);
        EXPECT_EQ(st.path().parent_path(), pkgs / ".condaguard" / "staging");
        EXPECT_EQ(file_mode(st.path()), 0700u);
        EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard"}));
    }
    EXPECT_TRUE(staging_empty());
    // A leftover of an interrupted run goes; a live staging directory stays.
    stdfs::create_directories(pkgs / ".condaguard" / "staging" / "leftover" / "folder" / "info");
    const Staging live = dir.stage(held);
    dir.clean_staging(held);
    EXPECT_EQ(top_level(pkgs / ".condaguard" / "staging"), (std::set<std::string>{live.path().filename()}));
}

TEST_F(PkgsDirTest, A14_symlinked_pkgs_entry) {
    const stdfs::path outside = tmp / "outside";
    write_file(outside / "victim", "victim");
    write_file(outside / "dir" / "info" / "index.json", "{}");
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    stdfs::create_symlink(outside / "victim", pkgs / kFn);
    stdfs::create_symlink(outside / "victim", pkgs / (kFn + ".sig"));
    stdfs::create_symlink(outside / "dir", pkgs / kStem);
    EXPECT_THROW(dir.open_cached_tarball(kFn), fs::NotRegularFile);
    EXPECT_EQ(dir.inspect(kFn).folder, fs::FileKind::Symlink);
    EXPECT_TRUE(dir.find_claimants(*parse_package_file_name(kFn)).empty());  // conda skips links too
    const PackageDirLock held = dir.lock();
    place(dir, held, new_pkg, "new");
    expect_entry("new");
    EXPECT_FALSE(stdfs::is_symlink(pkgs / kFn));
    EXPECT_FALSE(stdfs::is_symlink(pkgs / kStem));
    EXPECT_EQ(read_file(outside / "victim"), "victim");
    EXPECT_EQ(top_level(outside / "dir"), (std::set<std::string>{"info"}));
    EXPECT_EQ(read_file(outside / "dir" / "info" / "index.json"), "{}");
    // The package directory itself as a link is refused.
    stdfs::create_symlink(pkgs, tmp / "linked-pkgs");
    EXPECT_THROW(PackageDir::open(tmp / "linked-pkgs", CreateIfMissing::No), std::system_error);
}

TEST_F(PkgsDirTest, A14_planted_siblings_are_found_and_removed) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    const PackageDirLock held = dir.lock();
    place(dir, held, new_pkg, "new");
    write_file(pkgs / ".tmp-x" / "info" / "index.json", R"({"name":"pkg","version":"1.0","build":"0"})");
    write_file(pkgs / "pkg-1.0-0.old" / "info" / "repodata_record.json",
               R"({"name":"pkg","version":"1.0","build":"0","url":"x"})");
    write_file(pkgs / "dupkeys" / "info" / "index.json", R"({"name":"other","name":"pkg","version":"1.0","build":"0"})");
    write_file(pkgs / "other-2.0-0" / "info" / "index.json", R"({"name":"other","version":"2.0","build":"0"})");
    write_file(pkgs / "no-info" / "lib" / "x", "x");
    stdfs::create_symlink(pkgs / ".tmp-x", pkgs / "link-to-claimant");
    const auto found = dir.find_claimants(*parse_package_file_name(kFn));
    EXPECT_EQ(std::set<std::string>(found.begin(), found.end()),
              (std::set<std::string>{kStem, ".tmp-x", "pkg-1.0-0.old", "dupkeys"}));
    for (const auto& f : found)
        if (f != kStem) dir.remove_folder(held, f);
    EXPECT_EQ(dir.find_claimants(*parse_package_file_name(kFn)), std::vector<std::string>{kStem});
    EXPECT_THROW(dir.remove_folder(held, ".condaguard"), std::invalid_argument);
    EXPECT_THROW(dir.remove_folder(held, "../x"), std::invalid_argument);
}

// One scan answers for every package: a folder is named for each package
// its index.json or repodata_record.json names, and, failing closed, for
// every package when either cannot be read as naming one.
TEST_F(PkgsDirTest, A14_one_scan_answers_for_every_package) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    write_file(pkgs / "a-1-0" / "info" / "index.json", R"({"name":"a","version":"1","build":"0"})");
    write_file(pkgs / "ab" / "info" / "index.json", R"({"name":"a","version":"1","build":"0"})");
    write_file(pkgs / "ab" / "info" / "repodata_record.json", R"({"name":"b","version":"2","build":"0"})");
    write_file(pkgs / "twice" / "info" / "index.json", R"({"name":"b","version":"2","build":"0"})");
    write_file(pkgs / "twice" / "info" / "repodata_record.json", R"({"name":"b","version":"2","build":"0"})");
    write_file(pkgs / "unreadable" / "info" / "index.json", R"({"name":"a")");
    write_file(pkgs / "no-build" / "info" / "repodata_record.json", R"({"name":"c","version":"1"})");
    write_file(tmp / "elsewhere" / "index.json", R"({"name":"z","version":"9","build":"9"})");
    stdfs::create_directories(pkgs / "info-link");
    stdfs::create_directory_symlink(tmp / "elsewhere", pkgs / "info-link" / "info");
    write_file(pkgs / "a-1-1" / "info" / "index.json", R"({"name":"a","version":"1","build":"1"})");
    const ClaimScan scan = dir.scan_claims();
    const auto claimants = [&](const std::string& fn) {
        const auto v = scan.claimants(*parse_package_file_name(fn));
        EXPECT_EQ(std::set<std::string>(v.begin(), v.end()).size(), v.size()) << fn << ": a folder named twice";
        return std::set<std::string>(v.begin(), v.end());
    };
    const std::set<std::string> any{"unreadable", "info-link"};
    auto with_any = [&](std::set<std::string> s) {
        s.insert(any.begin(), any.end());
        return s;
    };
    EXPECT_EQ(claimants("a-1-0.conda"), with_any({"a-1-0", "ab"}));
    EXPECT_EQ(claimants("b-2-0.tar.bz2"), with_any({"ab", "twice"}));
    EXPECT_EQ(claimants("a-1-1.conda"), with_any({"a-1-1"}));
    EXPECT_EQ(claimants("z-9-9.conda"), any);  // through a linked info/: any, not z alone
    EXPECT_EQ(claimants("d-1-0.conda"), any);
    // Its build missing: every build of c 1, and nothing else.
    EXPECT_EQ(claimants("c-1-0.conda"), with_any({"no-build"}));
    EXPECT_EQ(claimants("c-1-7.conda"), with_any({"no-build"}));
    EXPECT_EQ(claimants("c-2-0.conda"), any);
    // claims() reads one folder again.
    EXPECT_TRUE(dir.claims("ab", *parse_package_file_name("b-2-0.conda")));
    EXPECT_FALSE(dir.claims("ab", *parse_package_file_name("b-2-1.conda")));
    EXPECT_TRUE(dir.claims("info-link", *parse_package_file_name("b-2-1.conda")));
    EXPECT_FALSE(dir.claims("gone", *parse_package_file_name("a-1-0.conda")));
    stdfs::remove_all(pkgs / "a-1-0");
    EXPECT_FALSE(dir.claims("a-1-0", *parse_package_file_name("a-1-0.conda")));
    // The scan is a snapshot; find_claimants reads the directory anew.
    write_file(pkgs / "d-1-0" / "info" / "index.json", R"({"name":"d","version":"1","build":"0"})");
    EXPECT_EQ(claimants("d-1-0.conda"), any);
    const auto now = dir.find_claimants(*parse_package_file_name("d-1-0.conda"));
    EXPECT_EQ(std::set<std::string>(now.begin(), now.end()), with_any({"d-1-0"}));
}

// A file that names another package before a field is missing or not a
// string claims nothing of this one (it cannot be this package's): only a
// file that cannot be read as naming another package claims every one.
TEST_F(PkgsDirTest, A14_a_file_naming_another_package_before_a_field_is_missing_claims_nothing_of_this_one) {
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    write_file(pkgs / "other-no-build" / "info" / "index.json", R"({"name":"other","version":"1"})");
    write_file(pkgs / "other-num-version" / "info" / "index.json", R"({"name":"other","version":1,"build":"0"})");
    write_file(pkgs / "pkg-other-version" / "info" / "index.json", R"({"name":"pkg","version":"2.0"})");
    EXPECT_TRUE(dir.find_claimants(*parse_package_file_name(kFn)).empty());
    write_file(pkgs / "pkg-no-build" / "info" / "repodata_record.json", R"({"name":"pkg","version":"1.0","build":7})");
    EXPECT_EQ(dir.find_claimants(*parse_package_file_name(kFn)), std::vector<std::string>{"pkg-no-build"});
}

TEST_F(PkgsDirTest, A14_move_aside_then_put_back_or_delete_following_no_link) {
    // A claimant moved out of the top level and put back is as it was; one
    // left in the staging directory is deleted with it, never through a link.
    const stdfs::path outside = tmp / "outside";
    write_file(outside / "keep", "keep");
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    const PackageDirLock held = dir.lock();
    write_file(pkgs / ".tmp-x" / "info" / "index.json", R"({"name":"pkg","version":"1.0","build":"0"})");
    stdfs::create_symlink(outside, pkgs / ".tmp-x" / "escape");
    {
        Staging st = dir.stage(held);
        const auto aside = dir.move_aside(held, st, ".tmp-x");
        ASSERT_TRUE(aside);
        EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard"}));
        EXPECT_EQ(dir.move_aside(held, st, ".tmp-x"), std::nullopt) << "already gone";
        dir.put_back(held, st, *aside, ".tmp-x");
        EXPECT_TRUE(stdfs::is_symlink(pkgs / ".tmp-x" / "escape"));
        EXPECT_THROW(dir.move_aside(held, st, ".condaguard"), std::invalid_argument);
        EXPECT_THROW(dir.move_aside(held, st, "urls.txt"), std::invalid_argument);
        EXPECT_TRUE(dir.move_aside(held, st, ".tmp-x"));
    }
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard"}));
    EXPECT_EQ(read_file(outside / "keep"), "keep");
    EXPECT_TRUE(staging_empty());
}

TEST_F(PkgsDirTest, remove_entry_follows_no_link_and_removes_read_only_dirs) {
    const stdfs::path outside = tmp / "outside";
    write_file(outside / "keep", "keep");
    const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
    const PackageDirLock held = dir.lock();
    place(dir, held, new_pkg, "new");
    stdfs::create_symlink(outside, pkgs / kStem / "escape");
    stdfs::create_directories(pkgs / kStem / "ro" / "sub");
    stdfs::permissions(pkgs / kStem / "ro", stdfs::perms(0555));
    dir.remove_entry(held, kFn, RemoveArchive::No);
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard", kFn, kFn + ".sig"}));
    dir.remove_entry(held, kFn, RemoveArchive::Yes);
    EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard"}));
    EXPECT_EQ(read_file(outside / "keep"), "keep");
    EXPECT_TRUE(staging_empty());
}

// A run killed (SIGKILL) after each step of place() leaves only complete
// entries: a folder at the top level always sits beside the archive and
// signature it came with. The next run cleans up and succeeds.
TEST_F(PkgsDirTest, A14_crash_at_each_step) {
    Deadline d(60);
    const std::vector<PlaceStep> steps{PlaceStep::ArchiveStaged, PlaceStep::SigStaged,        PlaceStep::RecordWritten,
                                       PlaceStep::Synced,        PlaceStep::OldFolderMovedOut, PlaceStep::ArchivePlaced,
                                       PlaceStep::SigPlaced,     PlaceStep::FolderPlaced,     PlaceStep::UrlAppended};
    for (const PlaceStep kill_at : steps) {
        SCOPED_TRACE(static_cast<int>(kill_at));
        stdfs::remove_all(pkgs);
        {
            const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::Yes);
            place(dir, dir.lock(), old_pkg, "old");
        }
        const pid_t pid = ::fork();
        if (pid == 0) {
            try {
                const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::No);
                const PackageDirLock held = dir.lock();
                place(dir, held, new_pkg, "new", [&](PlaceStep s) {
                    if (s == kill_at) ::raise(SIGKILL);
                });
            } catch (const std::exception&) {
                ::_exit(1);
            }
            ::_exit(0);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

        const auto top = top_level(pkgs);
        for (const auto& name : top)
            EXPECT_TRUE((std::set<std::string>{"urls.txt", ".condaguard", kFn, kFn + ".sig", kStem}).contains(name))
                << name;
        if (top.contains(kStem)) expect_entry(read_file(pkgs / kStem / "bin/tool"));
        EXPECT_TRUE(top.contains(kFn) && top.contains(kFn + ".sig"));

        // The next run.
        const PackageDir dir = PackageDir::open(pkgs, CreateIfMissing::No);
        const PackageDirLock held = dir.lock(std::chrono::seconds(5));
        dir.clean_staging(held);
        EXPECT_TRUE(staging_empty());
        place(dir, held, new_pkg, "new");
        expect_entry("new");
        EXPECT_EQ(top_level(pkgs), (std::set<std::string>{"urls.txt", ".condaguard", kFn, kFn + ".sig", kStem}));
        EXPECT_TRUE(staging_empty());
        EXPECT_TRUE(read_file(pkgs / "urls.txt").ends_with(kUrl + "\n"));
    }
}

}  // namespace

TEST(PkgsDirGuard, A6_condaguard_folder_writable_by_others_is_refused) {
    TempDir t;
    const auto dir = PackageDir::open(t / "pkgs", CreateIfMissing::Yes);
    { const auto held = dir.lock(); }
    ::chmod((t / "pkgs" / ".condaguard").c_str(), 0777);
    try {
        (void)dir.lock();
        FAIL() << "locked through a folder others can write";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("writable"), std::string::npos) << e.what();
    }
}
