// Reading package archives once: hashes, info/index.json, corrupt input.
#include <condaguard/package/archive.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

PackageScan scan(const stdfs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("open " + p.string());
    auto name = parse_package_file_name(p.filename().string());
    try {
        auto s = scan_package(fd, *name);
        ::close(fd);
        return s;
    } catch (...) {
        ::close(fd);
        throw;
    }
}

}  // namespace

TEST(PackageName, ParsesNameVersionBuild) {
    auto p = parse_package_file_name("python-dateutil-2.8.2-pyhd8ed1ab_0.conda");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name, "python-dateutil");
    EXPECT_EQ(p->version, "2.8.2");
    EXPECT_EQ(p->build, "pyhd8ed1ab_0");
    EXPECT_EQ(p->format, PackageFormat::Conda);
    EXPECT_EQ(parse_package_file_name("zlib-1.2.11-h7b6447c_3.tar.bz2")->format, PackageFormat::TarBz2);
    for (const char* bad : {"zlib.conda", "zlib-1.2.conda", "-1.0-0.conda", "zlib-1.0-0.zip", "a--0.conda", "a-1-.conda",
                            "../x-1.0-0.conda", "dir/x-1.0-0.conda", "x\\y-1.0-0.conda", "x\ny-1.0-0.conda"})
        EXPECT_FALSE(parse_package_file_name(bad)) << bad;
    EXPECT_FALSE(parse_package_file_name(std::string_view("a-1.0-0.conda\0b-1.0-0.conda", 27)));
}

TEST(Package, ScansBothFormatsInOnePass) {
    TempDir t;
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        PackageSpec spec{.name = "demo", .version = "2.1", .build = "h1_0", .format = fmt};
        const auto path = build_package(t.path(), spec);
        const std::string bytes = read_file(path);
        PackageScan s = scan(path);
        EXPECT_EQ(s.size, bytes.size());
        EXPECT_EQ(s.sha256, sha256_bytes(bytes));
        ASSERT_TRUE(s.index_json);
        EXPECT_EQ((*s.index_json)["name"], "demo");
        EXPECT_EQ((*s.index_json)["version"], "2.1");
        EXPECT_FALSE(identity_mismatch(*s.index_json, *parse_package_file_name(spec.file_name()), "noarch"));
    }
}

TEST(Package, CorruptArchivesAreRefused) {
    TempDir t;
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        const auto path = build_package(t.path(), PackageSpec{.format = fmt, .files = {{"data", std::string(200000, 'z')}}});
        const std::string good = read_file(path);
        write_file(path, good.substr(0, good.size() / 2));
        EXPECT_THROW(scan(path), CorruptPackage) << "truncated " << path;
        std::string flipped = good;
        flipped[good.size() / 2] ^= 0x20;
        write_file(path, flipped);
        EXPECT_THROW(scan(path), CorruptPackage) << "flipped " << path;
        write_file(path, "not an archive at all");
        EXPECT_THROW(scan(path), CorruptPackage) << "garbage " << path;
    }
}

// A .conda over several read chunks: the zip end record is still found in
// the kept tail, and losing the central directory is still caught.
TEST(Package, LargeCondaAcrossManyReadChunks) {
    TempDir t;
    std::string noise(1 << 20, '\0');
    std::uint64_t x = 88172645463325252ULL;
    for (auto& c : noise) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c = static_cast<char>(x);
    }
    const auto path = build_package(t.path(), PackageSpec{.name = "big", .files = {{"lib/blob", noise}}});
    const std::string bytes = read_file(path);
    ASSERT_GT(bytes.size(), std::size_t{3} << 18) << "spans several 256 KiB chunks";
    PackageScan s = scan(path);
    EXPECT_EQ(s.sha256, sha256_bytes(bytes));
    EXPECT_TRUE(s.index_json);
    write_file(path, bytes.substr(0, bytes.size() - 30));
    EXPECT_THROW(scan(path), CorruptPackage);
}

TEST(Package, MissingIndexJsonAndRenamedConda) {
    TempDir t;
    auto no_index = build_package(t.path(), PackageSpec{.name = "noindex", .with_index_json = false});
    EXPECT_FALSE(scan(no_index).index_json);
    auto p = build_package(t.path(), PackageSpec{.name = "orig"});
    stdfs::rename(p, t / "renamed-1.0-0.conda");
    EXPECT_THROW(scan(t / "renamed-1.0-0.conda"), CorruptPackage) << "a renamed .conda has no matching info member";
}

TEST(Package, IdentityMismatchNamesTheField) {
    auto name = *parse_package_file_name("foo-1.0-0.conda");
    nlohmann::json j{{"name", "foo"}, {"version", "1.0"}, {"build", "0"}, {"build_number", 0}, {"subdir", "noarch"}};
    EXPECT_FALSE(identity_mismatch(j, name, "noarch"));
    auto v = j;
    v["version"] = "2.0";
    EXPECT_EQ(identity_mismatch(v, name, "noarch"), "info/index.json says version '2.0' but the file name says '1.0'");
    auto s = j;
    s["subdir"] = "linux-64";
    EXPECT_NE(identity_mismatch(s, name, "noarch")->find("subdir 'linux-64'"), std::string::npos);
    auto b = j;
    b.erase("build_number");
    EXPECT_TRUE(identity_mismatch(b, name, "noarch"));
}

TEST(Package, RealPackagesMatchUpstreamRecords) {
    auto shared = shared_dir();
    if (!shared) GTEST_SKIP() << "../shared is not present";
    const auto repo = *shared / "fixtures" / "real" / "conda_format_repo";
    for (const char* sd : {"linux-64", "osx-64", "win-64"}) {
        const auto repodata = nlohmann::json::parse(read_file(repo / sd / "repodata.json"));
        for (const auto& e : stdfs::directory_iterator(repo / sd)) {
            const std::string fn = e.path().filename().string();
            if (!parse_package_file_name(fn)) continue;
            const auto& rec = repodata[fn.ends_with(".conda") ? "packages.conda" : "packages"][fn];
            PackageScan s = scan(e.path());
            EXPECT_EQ(to_hex(s.sha256), rec["sha256"]) << fn;
            EXPECT_EQ(to_hex(s.md5), rec["md5"]) << fn;
            EXPECT_EQ(s.size, rec["size"]) << fn;
            ASSERT_TRUE(s.index_json) << fn;
            EXPECT_EQ((*s.index_json)["depends"], rec["depends"]) << fn;
            EXPECT_FALSE(identity_mismatch(*s.index_json, *parse_package_file_name(fn), sd)) << fn;
        }
    }
}
