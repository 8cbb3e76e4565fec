// fs::open_untrusted: the one way to open a file someone else could have
// planted. Anything but a regular file is refused at once, named.
#include <condaguard/sys/fs.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

fs::FileKind refused_kind(const stdfs::path& p) {
    try {
        fs::open_untrusted(p);
    } catch (const fs::NotRegularFile& e) {
        EXPECT_EQ(e.path(), p.string());
        return e.kind();
    }
    return fs::FileKind::Regular;
}

}  // namespace

TEST(OpenUntrusted, OpensRegularFilesWithoutNonblock) {
    TempDir t;
    write_file(t / "a", "hello");
    const fs::OpenedFile f = fs::open_untrusted(t / "a");
    EXPECT_TRUE(S_ISREG(f.st.st_mode));
    EXPECT_EQ(f.st.st_size, 5);
    const int fl = ::fcntl(f.fd.get(), F_GETFL);
    EXPECT_EQ(fl & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(f.fd.get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(OpenUntrusted, A13_fifo_is_refused_at_once) {
    Deadline d(10);  // a blocking open of a FIFO without a writer never returns
    TempDir t;
    ASSERT_EQ(::mkfifo((t / "fifo").c_str(), 0600), 0);
    EXPECT_EQ(refused_kind(t / "fifo"), fs::FileKind::Fifo);
    try {
        fs::open_untrusted(t / "fifo");
    } catch (const fs::NotRegularFile& e) {
        EXPECT_STREQ(e.what(), "is a FIFO, not a regular file");
    }
}

TEST(OpenUntrusted, A12_devices_are_refused) {
    Deadline d(10);
    EXPECT_EQ(refused_kind("/dev/zero"), fs::FileKind::CharDevice);  // endless data
    EXPECT_EQ(refused_kind("/dev/null"), fs::FileKind::CharDevice);
}

TEST(OpenUntrusted, A13_socket_is_refused) {
    Deadline d(10);
    TempDir t;
    const stdfs::path p = t / "sock";
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    fs::Fd sock(s);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string name = p.string();
    ASSERT_LT(name.size(), sizeof addr.sun_path);
    std::copy(name.begin(), name.end(), addr.sun_path);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(refused_kind(p), fs::FileKind::Socket);
}

TEST(OpenUntrusted, A4_symlink_directory_and_missing_are_refused) {
    TempDir t;
    write_file(t / "real", "x");
    stdfs::create_symlink(t / "real", t / "link");
    stdfs::create_directory(t / "dir");
    EXPECT_EQ(refused_kind(t / "link"), fs::FileKind::Symlink);
    EXPECT_EQ(refused_kind(t / "dir"), fs::FileKind::Directory);
    EXPECT_EQ(refused_kind(t / "absent"), fs::FileKind::Missing);
    EXPECT_EQ(refused_kind(t / "real" / "below"), fs::FileKind::Missing);  // ENOTDIR
}

TEST(OpenUntrusted, AtRefusesNamesWithSlashes) {
    TempDir t;
    stdfs::create_directory(t / "sub");
    write_file(t / "sub" / "f", "x");
    fs::Fd dir = fs::open_raw(t.path(), O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(dir);
    EXPECT_THROW(fs::open_untrusted_at(dir.get(), "sub/f", t / "sub" / "f"), fs::NotRegularFile);
    EXPECT_THROW(fs::open_untrusted_at(dir.get(), "", t.path()), fs::NotRegularFile);
    fs::Fd sub = fs::open_raw(t / "sub", O_RDONLY | O_DIRECTORY);
    EXPECT_EQ(fs::open_untrusted_at(sub.get(), "f", t / "sub" / "f").st.st_size, 1);
}
