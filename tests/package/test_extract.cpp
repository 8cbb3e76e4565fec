// Extracting verified packages: exactly their files, and nothing outside the
// destination whatever the archive holds (A16).
#include <condaguard/package/extract.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <lib/archive/handles.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/trust/digest.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

using namespace condaguard;
using namespace condaguard::test;

namespace {

const std::string kStem = "pkg-1.0-0";

TrustedRecord record_of(const stdfs::path& p) {
    const std::string bytes = read_file(p);
    return TrustedRecord{.size = bytes.size(), .sha256 = sha256_bytes(bytes), .md5 = std::nullopt};
}

PackageScan extract(const stdfs::path& archive, const stdfs::path& dest, const ExtractLimits& limits = {}) {
    stdfs::create_directories(dest);
    const fs::Fd in(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
    const fs::Fd out(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!in || !out) throw std::runtime_error("open for test");
    return extract_package(in.get(), *parse_package_file_name(archive.filename().string()), record_of(archive),
                           out.get(), limits);
}

// Every path below `root`, relative, directories with a trailing '/'.
std::set<std::string> tree(const stdfs::path& root) {
    std::set<std::string> out;
    for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
        std::string rel = it->path().lexically_relative(root).string();
        if (it->is_directory() && !it->is_symlink()) rel += '/';
        out.insert(rel);
    }
    return out;
}

// The reason extraction was refused as INVALID ("" when it was not).
std::string refusal(const stdfs::path& archive, const stdfs::path& dest) {
    try {
        extract(archive, dest);
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::Invalid) << e.what();
        return e.what();
    }
    return "";
}

std::string info_tar() {
    return tar_member("info/index.json", R"({"name":"pkg","version":"1.0","build":"0","build_number":0})");
}

// A .tar.bz2 of the info members then `members`, ended.
stdfs::path raw_tar_bz2(const stdfs::path& dir, const std::string& members) {
    return build_raw_package(dir, kStem, PackageFormat::TarBz2, info_tar() + members + tar_end());
}

TarHeaderExtras link_to(const std::string& target) { return TarHeaderExtras{.link = target}; }
TarHeaderExtras with_mode(const std::string& octal7) { return TarHeaderExtras{.raw = {{100, octal7}}}; }

struct ExtractTest : ::testing::Test {
    TempDir tmp;
    stdfs::path dest = tmp / "pkgs" / ".condaguard" / "staging" / "x" / "folder";
    stdfs::path outside = tmp / "outside";
    void SetUp() override { stdfs::create_directories(outside); }
    bool outside_untouched() const { return stdfs::is_empty(outside); }
};

TEST_F(ExtractTest, conda_extracts_exactly_its_files) {
    const auto p = build_package(tmp / "in", PackageSpec{.files = {{"bin/tool", "#!/bin/sh\n"}, {"lib/a.txt", "a"}}});
    const PackageScan scan = extract(p, dest);
    EXPECT_EQ(scan.sha256, record_of(p).sha256);
    EXPECT_EQ(tree(dest), (std::set<std::string>{"bin/", "bin/tool", "lib/", "lib/a.txt", "info/",
                                                 "info/index.json", "info/paths.json", "info/files"}));
    EXPECT_EQ(read_file(dest / "bin/tool"), "#!/bin/sh\n");
    EXPECT_EQ(read_file(dest / "lib/a.txt"), "a");
    EXPECT_EQ(file_mode(dest / "bin/tool"), 0755u);
    EXPECT_EQ(file_mode(dest / "lib/a.txt"), 0644u);
    EXPECT_EQ(stdfs::last_write_time(dest / "lib/a.txt").time_since_epoch(),
              stdfs::last_write_time(dest / "bin/tool").time_since_epoch());
    struct stat st {};
    ASSERT_EQ(::stat((dest / "lib/a.txt").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtime, 1700000000);
}

TEST_F(ExtractTest, tar_bz2_extracts_exactly_its_files) {
    const auto p = build_package(tmp / "in", PackageSpec{.format = PackageFormat::TarBz2,
                                                         .files = {{"bin/tool", "t"}, {"share/doc/x", "x"}}});
    extract(p, dest);
    EXPECT_EQ(tree(dest), (std::set<std::string>{"bin/", "bin/tool", "share/", "share/doc/", "share/doc/x", "info/",
                                                 "info/index.json", "info/paths.json", "info/files"}));
    EXPECT_EQ(read_file(dest / "share/doc/x"), "x");
    EXPECT_EQ(file_mode(dest / "bin/tool"), 0755u);
}

TEST_F(ExtractTest, relative_symlinks_hardlinks_directories_and_modes) {
    const std::string members = tar_member("lib/", "", '5', with_mode("0000750")) +
                                tar_member("lib/libz.so.1", "ELF", '0', with_mode("0000777")) +
                                tar_member("lib/libz.so", "", '2', link_to("libz.so.1")) +
                                tar_member("bin/up", "", '2', link_to("../lib/libz.so")) +
                                tar_member("lib/copy", "", '1', link_to("lib/libz.so.1")) +
                                tar_member("etc/conf", "c", '0', with_mode("0000666"));
    const auto p = raw_tar_bz2(tmp / "in", members);
    extract(p, dest);
    EXPECT_EQ(tree(dest), (std::set<std::string>{"info/", "info/index.json", "lib/", "lib/libz.so.1", "lib/libz.so",
                                                 "lib/copy", "bin/", "bin/up", "etc/", "etc/conf"}));
    EXPECT_EQ(stdfs::read_symlink(dest / "lib/libz.so"), "libz.so.1");
    EXPECT_EQ(stdfs::read_symlink(dest / "bin/up"), "../lib/libz.so");
    EXPECT_EQ(read_file(dest / "bin/up"), "ELF");
    EXPECT_TRUE(stdfs::equivalent(dest / "lib/copy", dest / "lib/libz.so.1"));
    EXPECT_EQ(file_mode(dest / "lib/libz.so.1"), 0755u);  // no group or other write
    EXPECT_EQ(file_mode(dest / "etc/conf"), 0644u);
    EXPECT_EQ(file_mode(dest / "lib"), 0750u);
    EXPECT_EQ(file_mode(dest / "etc"), 0755u);  // made for its member
}

TEST_F(ExtractTest, A16_absolute_path) {
    const auto p = raw_tar_bz2(tmp / "in", tar_member((outside / "evil").string(), "x"));
    EXPECT_NE(refusal(p, dest).find("absolute path"), std::string::npos);
    EXPECT_TRUE(outside_untouched());
}

TEST_F(ExtractTest, A16_dotdot) {
    // dest/../../../../../outside/evil
    const auto p = raw_tar_bz2(tmp / "in", tar_member("../../../../../outside/evil", "x"));
    EXPECT_NE(refusal(p, dest).find("'..' segment"), std::string::npos);
    EXPECT_TRUE(outside_untouched());
    const auto q = raw_tar_bz2(tmp / "in2", tar_member("lib/x", "", '2', link_to("x")) +
                                                tar_member("lib/../../evil", "x"));
    EXPECT_NE(refusal(q, tmp / "d2").find("'..' segment"), std::string::npos);
}

TEST_F(ExtractTest, A16_symlink_escape) {
    const auto abs = raw_tar_bz2(tmp / "a", tar_member("lib/evil", "", '2', link_to(outside.string())));
    EXPECT_NE(refusal(abs, tmp / "d1").find("absolute path"), std::string::npos);
    const auto up = raw_tar_bz2(tmp / "b", tar_member("lib/evil", "", '2', link_to("../../outside")));
    EXPECT_NE(refusal(up, tmp / "d2").find("outside the package"), std::string::npos);
    // Lexically inside, but through another link member it climbs out:
    // a/b/s -> ../.. is the root; t -> a/b/s/../.. is the root's parent.
    const auto chained = raw_tar_bz2(tmp / "c", tar_member("t", "", '2', link_to("a/b/s/../..")) +
                                                    tar_member("a/b/s", "", '2', link_to("../..")));
    EXPECT_NE(refusal(chained, tmp / "d3").find("leads outside the package"), std::string::npos);
    EXPECT_TRUE(outside_untouched());
}

TEST_F(ExtractTest, A16_write_through_symlink) {
    // An allowed link, then a member below it.
    const auto p = raw_tar_bz2(tmp / "in", tar_member("sub/", "", '5') + tar_member("d", "", '2', link_to("sub")) +
                                               tar_member("d/x", "x"));
    EXPECT_NE(refusal(p, dest).find("passes through the symbolic link member 'd'"), std::string::npos);
    EXPECT_FALSE(stdfs::exists(dest / "sub" / "x"));
}

TEST_F(ExtractTest, A16_hardlink_outside) {
    const auto abs = raw_tar_bz2(tmp / "a", tar_member("h", "", '1', link_to("/etc/passwd")));
    EXPECT_NE(refusal(abs, tmp / "d1").find("absolute path"), std::string::npos);
    const auto up = raw_tar_bz2(tmp / "b", tar_member("h", "", '1', link_to("../outside/x")));
    EXPECT_NE(refusal(up, tmp / "d2").find("outside the package"), std::string::npos);
    // A link to a link member, or to a member not yet written.
    const auto via_link = raw_tar_bz2(tmp / "c", tar_member("l", "", '2', link_to("x")) +
                                                     tar_member("h", "", '1', link_to("l")));
    EXPECT_NE(refusal(via_link, tmp / "d3").find("not an earlier regular member"), std::string::npos);
    const auto later = raw_tar_bz2(tmp / "e", tar_member("h", "", '1', link_to("x")) + tar_member("x", "x"));
    EXPECT_NE(refusal(later, tmp / "d4").find("not an earlier regular member"), std::string::npos);
    EXPECT_TRUE(outside_untouched());
}

TEST_F(ExtractTest, A16_device_node) {
    for (char type : {'3', '4', '6'}) {
        const auto p = raw_tar_bz2(tmp / std::string(1, type), tar_member("dev", "", type));
        const stdfs::path d = tmp / ("d" + std::string(1, type));
        EXPECT_NE(refusal(p, d).find("not allowed"), std::string::npos) << type;
        EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(d / "dev")));
    }
}

TEST_F(ExtractTest, A16_setuid_bit) {
    for (const char* mode : {"0004755", "0002755", "0001755"}) {
        const auto p = raw_tar_bz2(tmp / mode, tar_member("bin/su", "x", '0', with_mode(mode)));
        EXPECT_NE(refusal(p, tmp / (std::string("d") + mode)).find("setuid, setgid or sticky"), std::string::npos);
    }
    const auto dir = raw_tar_bz2(tmp / "dir", tar_member("tmp/", "", '5', with_mode("0001777")));
    EXPECT_NE(refusal(dir, tmp / "ddir").find("setuid, setgid or sticky"), std::string::npos);
}

TEST_F(ExtractTest, A14_bytes_other_than_the_verified_ones_are_refused) {
    const auto p = build_package(tmp / "in", PackageSpec{});
    TrustedRecord other = record_of(p);
    other.sha256[0] ^= 1;
    stdfs::create_directories(dest);
    const fs::Fd in(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    const fs::Fd out(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    try {
        extract_package(in.get(), *parse_package_file_name(p.filename().string()), other, out.get());
        FAIL() << "extracted";
    } catch (const VerdictError& e) {
        EXPECT_EQ(std::string(e.what()), "changed while being read");
    }
}

TEST_F(ExtractTest, destination_must_be_empty_and_limits_apply) {
    const auto p = build_package(tmp / "in", PackageSpec{});
    write_file(dest / "planted", "x");
    EXPECT_THROW(extract(p, dest), std::system_error);
    try {
        extract(p, tmp / "d3", ExtractLimits{.max_members = 3});
        FAIL() << "extracted";
    } catch (const CorruptPackage& e) {
        EXPECT_NE(std::string(e.what()).find("more than 3 members"), std::string::npos) << e.what();
    }
}

// bsdtar's test_write_disk_secure: the same archive, written by libarchive
// without the safety checks, lands outside; extract_package refuses it.
TEST_F(ExtractTest, A16_proves_both_sides_against_plain_archive_write_disk) {
    const auto p = raw_tar_bz2(tmp / "in", tar_member("escape", "", '2', link_to(outside.string())) +
                                               tar_member("escape/pwned", "owned"));
    // Plain libarchive, each pathname prefixed with the destination.
    const stdfs::path plain = tmp / "plain";
    stdfs::create_directories(plain);
    la::Reader r{archive_read_new()};
    la::Writer w{archive_write_disk_new()};
    ASSERT_EQ(archive_read_support_filter_bzip2(r.get()), ARCHIVE_OK);
    ASSERT_EQ(archive_read_support_format_tar(r.get()), ARCHIVE_OK);
    ASSERT_EQ(archive_write_disk_set_options(w.get(), ARCHIVE_EXTRACT_TIME), ARCHIVE_OK);
    ASSERT_EQ(archive_read_open_filename(r.get(), p.c_str(), 10240), ARCHIVE_OK);
    archive_entry* e = nullptr;
    while (archive_read_next_header(r.get(), &e) == ARCHIVE_OK) {
        const std::string name = (plain / archive_entry_pathname(e)).string();
        archive_entry_set_pathname(e, name.c_str());
        ASSERT_EQ(archive_write_header(w.get(), e), ARCHIVE_OK) << la::error_of(w.get());
        const void* buf = nullptr;
        size_t size = 0;
        la_int64_t off = 0;
        while (archive_read_data_block(r.get(), &buf, &size, &off) == ARCHIVE_OK)
            ASSERT_EQ(archive_write_data_block(w.get(), buf, size, off), ARCHIVE_OK);
        ASSERT_EQ(archive_write_finish_entry(w.get()), ARCHIVE_OK);
    }
    ASSERT_EQ(archive_write_close(w.get()), ARCHIVE_OK);
    EXPECT_EQ(read_file(outside / "pwned"), "owned");  // the unsafe side
    stdfs::remove(outside / "pwned");

    EXPECT_NE(refusal(p, dest).find("absolute path"), std::string::npos);
    EXPECT_TRUE(outside_untouched());
}

}  // namespace
