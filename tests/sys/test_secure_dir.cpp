// Trust directories and their ancestors (threat A6): the StrictModes walk.
#include <condaguard/sys/secure_dir.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

constexpr uid_t other_uid = 12345;

// A fresh 0700 directory under /tmp (TempDir) with `rel` made inside it at `mode`.
stdfs::path make_dir(const TempDir& t, const std::string& rel, mode_t mode) {
    const stdfs::path p = t / rel;
    stdfs::create_directories(p);
    if (::chmod(p.c_str(), mode) != 0) throw std::runtime_error("chmod " + p.string());
    return p;
}

void give_away(const stdfs::path& p) {
    if (::lchown(p.c_str(), other_uid, other_uid) != 0) throw std::runtime_error("lchown " + p.string());
}

// The fault for `dir`, failing the test when there is none.
fs::DirFault fault_of(const stdfs::path& dir) {
    auto f = fs::find_unsafe_dir(dir);
    if (!f) throw std::runtime_error(dir.string() + " was accepted");
    return *f;
}

}  // namespace

TEST(SecureDir, PrivateDirUnderTmpIsAcceptedAndOpened) {
    TempDir t;
    const auto keys = make_dir(t, "home/.conda/keys", 0700);
    EXPECT_EQ(fs::find_unsafe_dir(keys), std::nullopt);
    fs::Fd fd = fs::open_secure_dir(keys);
    ASSERT_TRUE(fd);
    struct stat a {}, b {};
    ASSERT_EQ(::fstat(fd.get(), &a), 0);
    ASSERT_EQ(::stat(keys.c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino) << "the descriptor is the directory that was checked";
}

TEST(SecureDir, A6_sticky_root_owned_ancestor_is_accepted) {
    // /tmp itself is such an ancestor of every TempDir.
    struct stat st {};
    ASSERT_EQ(::stat("/tmp", &st), 0);
    ASSERT_EQ(st.st_uid, 0u);
    ASSERT_NE(st.st_mode & S_ISVTX, 0u);
    TempDir t;
    EXPECT_EQ(fs::find_unsafe_dir(t.path()), std::nullopt);
    if (::geteuid() != 0) GTEST_SKIP() << "a root-owned sticky directory of our own needs root";
    make_dir(t, "shared", 01777);
    const auto keys = make_dir(t, "shared/keys", 0700);
    EXPECT_EQ(fs::find_unsafe_dir(keys), std::nullopt);
}

TEST(SecureDir, A6_sticky_dir_itself_is_refused) {
    TempDir t;
    const auto sticky = make_dir(t, "shared", 01777);
    const auto f = fault_of(sticky);
    EXPECT_EQ(f.path, sticky);
    EXPECT_EQ(f.kind, fs::DirFaultKind::Writable);
    EXPECT_NE(f.why.find("mode 1777"), std::string::npos) << f.why;
}

TEST(SecureDir, A6_sticky_ancestor_owned_by_another_user_is_refused) {
    if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
    TempDir t;
    const auto sticky = make_dir(t, "shared", 01777);
    make_dir(t, "shared/keys", 0700);
    give_away(sticky);
    const auto f = fault_of(t / "shared/keys");
    EXPECT_EQ(f.path, sticky);
    EXPECT_EQ(f.kind, fs::DirFaultKind::BadOwner);
}

TEST(SecureDir, A6_group_writable_ancestor_is_refused) {
    TempDir t;
    const auto home = make_dir(t, "home", 0770);
    if (!give_group_away(home)) GTEST_SKIP() << "chgrp to a shared group needs root";
    const auto keys = make_dir(t, "home/.conda/keys", 0700);
    const auto f = fault_of(keys);
    EXPECT_EQ(f.path, home);
    EXPECT_EQ(f.kind, fs::DirFaultKind::Writable);
    EXPECT_EQ(f.why, home.string() + " is writable by group or others (mode 0770)");
    EXPECT_THROW(fs::open_secure_dir(keys), fs::UnsafeDirectory);
}

// conda makes ~/.conda 02775; its group is the user's own private group.
TEST(SecureDir, A6_group_writable_by_the_users_private_group_is_safe) {
    TempDir t;
    const auto conda = make_dir(t, "home/.conda", 02775);
    const auto keys = make_dir(t, "home/.conda/keys", 0700);
    struct stat st {};
    ASSERT_EQ(::stat(conda.c_str(), &st), 0);
    if (!fs::is_user_private_group(st.st_gid)) GTEST_SKIP() << "this user has no private group";
    EXPECT_EQ(fs::find_unsafe_dir(keys), std::nullopt);
    ASSERT_EQ(::chmod(conda.c_str(), 02777), 0);  // others may write: never fine
    const auto f = fault_of(keys);
    EXPECT_EQ(f.path, conda);
    EXPECT_EQ(f.kind, fs::DirFaultKind::Writable);
    ASSERT_EQ(::chmod(conda.c_str(), 02775), 0);
    if (!give_group_away(conda)) return;
    EXPECT_EQ(fault_of(keys).path, conda);  // a shared group may not write
}

TEST(SecureDir, A6_world_writable_dir_is_refused) {
    TempDir t;
    const auto keys = make_dir(t, "keys", 0707);
    const auto f = fault_of(keys);
    EXPECT_EQ(f.path, keys);
    EXPECT_EQ(f.kind, fs::DirFaultKind::Writable);
}

TEST(SecureDir, A6_ancestor_owned_by_another_user_is_refused) {
    if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
    TempDir t;
    const auto home = make_dir(t, "home", 0755);
    const auto keys = make_dir(t, "home/keys", 0700);
    give_away(home);
    const auto f = fault_of(keys);
    EXPECT_EQ(f.path, home);
    EXPECT_EQ(f.kind, fs::DirFaultKind::BadOwner);
    EXPECT_NE(f.why.find("owned by uid 12345"), std::string::npos) << f.why;
    give_away(keys);
    ASSERT_EQ(::chown(home.c_str(), ::geteuid(), ::getegid()), 0);
    EXPECT_EQ(fault_of(keys).path, keys);
}

TEST(SecureDir, A6_symlinked_dir_is_resolved_and_its_target_checked) {
    TempDir t;
    const auto safe = make_dir(t, "real/keys", 0700);
    stdfs::create_symlink(safe, t / "keys-link");
    EXPECT_EQ(fs::find_unsafe_dir(t / "keys-link"), std::nullopt) << "a link in a safe place to a safe place";

    const auto open = make_dir(t, "open", 0777);
    const auto planted = make_dir(t, "open/keys", 0700);
    stdfs::create_symlink(planted, t / "bad-link");
    auto f = fault_of(t / "bad-link");
    EXPECT_EQ(f.path, open) << "the target's unsafe ancestor is named";

    // Relative targets with "..", resolved against the link's own directory.
    stdfs::create_symlink("../open/keys", t / "real" / "rel-link");
    EXPECT_EQ(fault_of(t / "real" / "rel-link").path, open);
    stdfs::create_symlink("../real/keys", t / "real" / "rel-ok");
    EXPECT_EQ(fs::find_unsafe_dir(t / "real" / "rel-ok"), std::nullopt);
}

TEST(SecureDir, A6_symlink_owned_by_another_user_is_refused) {
    if (::geteuid() != 0) GTEST_SKIP() << "lchown to another user needs root";
    TempDir t;
    const auto safe = make_dir(t, "real", 0700);
    stdfs::create_symlink(safe, t / "link");
    give_away(t / "link");
    const auto f = fault_of(t / "link");
    EXPECT_EQ(f.path, t / "link");
    EXPECT_EQ(f.kind, fs::DirFaultKind::BadOwner);
}

TEST(SecureDir, A6_symlink_loop_is_refused) {
    Deadline d(10);
    TempDir t;
    stdfs::create_symlink(t / "b", t / "a");
    stdfs::create_symlink(t / "a", t / "b");
    EXPECT_EQ(fault_of(t / "a").kind, fs::DirFaultKind::SymlinkLoop);
}

TEST(SecureDir, MissingAndNonDirectoryComponents) {
    Deadline d(10);
    TempDir t;
    auto f = fault_of(t / "nowhere" / "keys");
    EXPECT_EQ(f.kind, fs::DirFaultKind::Missing);
    EXPECT_EQ(f.path, t / "nowhere");
    write_file(t / "file", "x");
    f = fault_of(t / "file" / "keys");
    EXPECT_EQ(f.kind, fs::DirFaultKind::NotDirectory);
    EXPECT_EQ(f.path, t / "file");
    ASSERT_EQ(::mkfifo((t / "fifo").c_str(), 0600), 0);
    f = fault_of(t / "fifo");
    EXPECT_EQ(f.kind, fs::DirFaultKind::NotDirectory);
    EXPECT_NE(f.why.find("a FIFO"), std::string::npos) << f.why;
}

TEST(SecureDir, CreateMakesMissingDirsPrivate) {
    TempDir t;
    const auto keys = t / "home" / ".conda" / "keys";
    const mode_t old_umask = ::umask(022);
    fs::Fd fd = fs::open_secure_dir(keys, fs::CreateMissing::Yes);
    ::umask(old_umask);
    ASSERT_TRUE(fd);
    EXPECT_EQ(file_mode(t / "home"), 0755u);
    EXPECT_EQ(file_mode(t / "home" / ".conda"), 0755u);
    EXPECT_EQ(file_mode(keys), 0700u);
    // An existing unsafe directory is refused, never silently repaired.
    ASSERT_EQ(::chmod(keys.c_str(), 0777), 0);
    EXPECT_THROW(fs::open_secure_dir(keys, fs::CreateMissing::Yes), fs::UnsafeDirectory);
    EXPECT_EQ(file_mode(keys), 0777u);
}
