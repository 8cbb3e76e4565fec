// Package URLs and explicit files as conda reads them (conda-formats §5).
#include <condaguard/install/explicit.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

TEST(Explicit, UrlSplitsIntoChannelSubdirAndFile) {
    const auto u = parse_package_url("https://u:p@repo.example/t/tk-1/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda", "/");
    EXPECT_EQ(u.channel_url, "https://u:p@repo.example/t/tk-1/conda-forge");
    EXPECT_EQ(u.subdir, "linux-64");
    EXPECT_EQ(u.fn, "zlib-1.3.1-hb9d3cd8_2.conda");
    EXPECT_EQ(u.name.name, "zlib");
    EXPECT_EQ(u.name.version, "1.3.1");
    EXPECT_FALSE(u.sha256);
}

TEST(Explicit, ChecksumSuffixes) {
    const std::string md5(32, 'a'), sha(64, 'b');
    EXPECT_EQ(parse_package_url("https://h/c/noarch/x-1-0.tar.bz2#" + md5, "/").md5, md5);
    EXPECT_EQ(parse_package_url("https://h/c/noarch/x-1-0.tar.bz2#" + sha, "/").sha256, sha);
    EXPECT_EQ(parse_package_url("https://h/c/noarch/x-1-0.tar.bz2#sha256:" + sha, "/").sha256, sha);
    EXPECT_THROW(parse_package_url("https://h/c/noarch/x-1-0.tar.bz2#" + std::string(64, 'B'), "/"), ExplicitError);
    EXPECT_THROW(parse_package_url("https://h/c/noarch/x-1-0.tar.bz2#abc", "/"), ExplicitError);
}

TEST(Explicit, A15_local_paths_become_file_urls) {
    const auto u = parse_package_url("chan/noarch/x-1-0.conda", "/work");
    EXPECT_EQ(u.url, "file:///work/chan/noarch/x-1-0.conda");
    EXPECT_EQ(u.channel_url, "file:///work/chan");
    EXPECT_EQ(parse_package_url("/abs/chan/osx-64/x-1-0.conda", "/work").url, "file:///abs/chan/osx-64/x-1-0.conda");
}

TEST(Explicit, NotAPackage) {
    for (const char* bad : {"https://h/c/noarch/readme.txt", "https://h/x-1-0.conda", "zlib", "",
                            "https://h/c/noarch/x-1-0.conda?x=1", "https://h/c/noarch/x 1-0.conda"})
        EXPECT_THROW(parse_package_url(bad, "/"), ExplicitError) << bad;
}

TEST(Explicit, FileNeedsTheMarkerAndNamesTheBadLine) {
    const std::string good = "# This file may be used to create an environment using:\n# platform: linux-64\n"
                             "@EXPLICIT\nhttps://h/c/linux-64/a-1-0.conda\n\n  https://h/c/noarch/b-2-1.tar.bz2  \n";
    const auto ps = parse_explicit(good, "/");
    ASSERT_EQ(ps.size(), 2u);
    EXPECT_EQ(ps[1].fn, "b-2-1.tar.bz2");
    EXPECT_THROW(parse_explicit("https://h/c/linux-64/a-1-0.conda\n", "/"), ExplicitError);
    try {
        parse_explicit("@EXPLICIT\nhttps://h/c/linux-64/a-1-0.conda\nnumpy>=1\n", "/");
        FAIL() << "no error";
    } catch (const ExplicitError& e) {
        EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
    }
}

TEST(Explicit, A15_explicit_file_read_as_untrusted) {
    TempDir t;
    ::mkfifo((t / "fifo").c_str(), 0600);
    Deadline d(10);
    EXPECT_ANY_THROW(read_explicit_file(t / "fifo", "/"));
    write_file(t / "env.txt", "@EXPLICIT\nhttps://h/c/linux-64/a-1-0.conda\n");
    EXPECT_EQ(read_explicit_file(t / "env.txt", "/").size(), 1u);
}

}  // namespace
