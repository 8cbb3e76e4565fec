// Reading package archives once: hashes, info/index.json, corrupt input.
#include <condaguard/package/archive.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <condaguard/sys/fs.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

fs::Fd open_for_test(const stdfs::path& p) {
    fs::Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw std::runtime_error("open " + p.string());
    return fd;
}

PackageScan scan(const stdfs::path& p, const ScanLimits& limits = {}) {
    const fs::Fd fd = open_for_test(p);
    return scan_package(fd.get(), *parse_package_file_name(p.filename().string()), limits);
}

PackageScan scan_trusted(const stdfs::path& p, const TrustedRecord& record, const ScanLimits& limits = {}) {
    const fs::Fd fd = open_for_test(p);
    return scan_trusted_package(fd.get(), *parse_package_file_name(p.filename().string()), record, limits);
}

TrustedRecord record_of(const std::string& bytes) {
    return TrustedRecord{.size = bytes.size(), .sha256 = sha256_bytes(bytes), .md5 = std::nullopt};
}

// The reason `body` is refused with as INVALID ("" when it is not).
template <class F>
std::string invalid_reason(F&& body) {
    try {
        body();
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::Invalid) << e.what();
        return e.what();
    }
    return "";
}

template <class F>
::testing::AssertionResult refused_with(F&& body, std::string_view fragment) {
    const std::string why = invalid_reason(body);
    if (why.find(fragment) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "reason: '" << why << "', expected it to contain '" << fragment << "'";
}

#define EXPECT_REFUSED(expr, fragment) EXPECT_TRUE(refused_with([&] { (void)(expr); }, fragment))

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
    const std::string noise = Noise(88172645463325252ULL).bytes(1 << 20);
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

// Reasons never carry the package's own path (the CLI prints it beside them).
TEST(Package, ReasonsDoNotNameThePackageFile) {
    TempDir t;
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        const auto path = build_package(t.path(), PackageSpec{.name = "named", .format = fmt});
        const std::string good = read_file(path);
        write_file(path, good.substr(0, good.size() - 40));
        const std::string why = invalid_reason([&] { scan(path); });
        EXPECT_FALSE(why.empty());
        EXPECT_EQ(why.find(path.filename().string()), std::string::npos) << why;
    }
}

// libarchive ends some messages in a newline ("ZIP uncompressed data is
// wrong size (...)\n"); a reason is one line, whatever byte is damaged.
TEST(Package, DamagedCondaReasonHasNoNewline) {
    TempDir t;
    const auto path = build_package(t.path(), PackageSpec{.name = "damaged"});
    const std::string good = read_file(path);
    bool saw_wrong_size = false;
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] ^= 0x20;
        write_file(path, bad);
        const std::string why = invalid_reason([&] { scan(path); });
        EXPECT_EQ(why.find_first_of("\n\r"), std::string::npos) << "byte " << i << ": " << why;
        saw_wrong_size |= why.find("wrong size") != std::string::npos;
    }
    EXPECT_TRUE(saw_wrong_size) << "the damage libarchive reports with a trailing newline was not reached";
}

// A12: the signed record comes first. A same-size bomb whose sha256 differs
// is refused on its digest and never decompressed: the tiny unpacked cap,
// passed through, would have refused it with its own reason otherwise.
TEST(Package, A12_trusted_record_first_same_size_bomb) {
    Deadline d(10);
    TempDir t;
    const std::string bomb = bzip2_bomb_tar(4096);  // 4 GiB unpacked
    const auto path = t / "bomb-1.0-0.tar.bz2";
    write_file(path, bomb);
    const ScanLimits tiny{.max_unpacked_bytes = 1 << 20,
                          .max_ratio = default_max_ratio,
                          .max_info_bytes = default_max_info_bytes,
                          .max_members = default_max_members};
    EXPECT_REFUSED(scan(path, tiny), "unpacks to more than 1048576 bytes (raise with --max-unpacked-bytes)");
    const TrustedRecord signed_other{.size = bomb.size(), .sha256 = sha256_bytes("the package that was signed"),
                                     .md5 = std::nullopt};
    EXPECT_EQ(invalid_reason([&] { scan_trusted(path, signed_other, tiny); }), "sha256 does not match the signed index");
    // When the record does vouch for these bytes, the caps still apply.
    EXPECT_REFUSED(scan_trusted(path, record_of(bomb), tiny), "raise with --max-unpacked-bytes");
}

// A12: a file longer than its record is INVALID after record.size + 1 bytes.
TEST(Package, A12_longer_than_record_reads_only_size_plus_one) {
    Deadline d(10);
    TempDir t;
    const auto path = build_package(t.path(), PackageSpec{.name = "long"});
    const std::string bytes = read_file(path);
    const TrustedRecord rec = record_of(bytes);
    {
        // 100 MB more, sparse: refused without reading it.
        fs::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        ASSERT_TRUE(fd);
        ASSERT_EQ(::ftruncate(fd.get(), static_cast<off_t>(bytes.size()) + 100'000'000), 0);
        EXPECT_EQ(invalid_reason([&] { scan_trusted(path, rec); }),
                  fmt::format("larger than the signed size of {} bytes", bytes.size()));
    }
    // A pipe holding exactly size + 1 bytes, its writer still open: one more
    // read would block until the deadline.
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const fs::Fd rd(p[0]), wr(p[1]);
    ASSERT_LT(bytes.size(), std::size_t{60000}) << "fits the pipe's buffer";
    fs::write_all(wr.get(), bytes + "x", "pipe");
    const std::string why = invalid_reason(
        [&] { scan_trusted_package(rd.get(), *parse_package_file_name(path.filename().string()), rec, {}); });
    EXPECT_NE(why.find("larger than the signed size"), std::string::npos) << why;
}

TEST(Package, A12_trusted_record_shorter_other_md5_and_match) {
    TempDir t;
    const auto path = build_package(t.path(), PackageSpec{.name = "rec"});
    const std::string bytes = read_file(path);
    TrustedRecord rec = record_of(bytes);
    rec.size += 1;
    EXPECT_EQ(invalid_reason([&] { scan_trusted(path, rec); }),
              fmt::format("{} bytes, smaller than the signed size of {} bytes", bytes.size(), bytes.size() + 1));
    rec = record_of(bytes);
    rec.md5 = Md5Digest{};
    EXPECT_EQ(invalid_reason([&] { scan_trusted(path, rec); }), "md5 does not match the signed index");
    rec.md5 = scan(path).md5;
    const PackageScan s = scan_trusted(path, rec);
    EXPECT_EQ(s.sha256, sha256_bytes(bytes));
    ASSERT_TRUE(s.index_json);
    EXPECT_EQ((*s.index_json)["name"], "rec");
    EXPECT_EQ(trusted_record_from_hex(rec.size, to_hex(rec.sha256), to_hex(*rec.md5))->md5, rec.md5);
    EXPECT_FALSE(trusted_record_from_hex(rec.size, to_hex(rec.sha256).substr(1), ""));
    EXPECT_FALSE(trusted_record_from_hex(rec.size, to_hex(rec.sha256), "xyz"));
}

ScanLimits limits_with(void (*change)(ScanLimits&)) {
    ScanLimits l;
    change(l);
    return l;
}

TEST(Package, A12_unpacked_bytes_cap) {
    TempDir t;
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        const auto path = build_package(t.path(), PackageSpec{.format = fmt, .files = {{"lib/data", std::string(300000, 'd')}}});
        EXPECT_NO_THROW(scan(path));
        EXPECT_REFUSED(scan(path, limits_with([](ScanLimits& l) { l.max_unpacked_bytes = 200000; })),
                       "unpacks to more than 200000 bytes (raise with --max-unpacked-bytes)");
    }
}

// A12: the ratio is judged while reading, against the whole file's size, so
// a 4 GiB bomb of 180 KiB stops after some 40 MB (the deadline proves it).
TEST(Package, A12_ratio_cap_stops_a_bomb_early) {
    Deadline d(10);
    TempDir t;
    const auto path = t / "bomb-1.0-0.tar.bz2";
    write_file(path, bzip2_bomb_tar(4096));
    EXPECT_REFUSED(scan(path), "unpacks to more than 200 times its size (raise with --max-ratio)");
    // A raised ratio hands it to the unpacked-bytes cap, which also stops early.
    EXPECT_REFUSED(scan(path, limits_with([](ScanLimits& l) {
                       l.max_ratio = 1'000'000;
                       l.max_unpacked_bytes = 64 << 20;
                   })),
                   "raise with --max-unpacked-bytes");
    // A small package that compresses well is below the ratio's floor.
    const auto zeros = build_package(t.path(), PackageSpec{.name = "zeros", .format = PackageFormat::TarBz2,
                                                           .files = {{"share/zeros", std::string(ratio_floor_bytes / 2, '\0')}}});
    EXPECT_NO_THROW(scan(zeros));
}

TEST(Package, A12_info_member_cap) {
    TempDir t;
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        const auto path = build_package(
            t.path(), PackageSpec{.format = fmt, .extra_info_members = {{"info/about.json", std::string(5000, ' ')}}});
        EXPECT_NO_THROW(scan(path));
        EXPECT_REFUSED(scan(path, limits_with([](ScanLimits& l) { l.max_info_bytes = 4096; })),
                       "member 'info/about.json' is larger than 4096 bytes (raise with --max-info-bytes)");
    }
    // info/index.json keeps its own 1 MiB cap.
    const auto big = build_package(t.path(), PackageSpec{.name = "big", .index_overrides = {{"pad", std::string(max_index_json_bytes, 'x')}}});
    EXPECT_REFUSED(scan(big, limits_with([](ScanLimits& l) { l.max_ratio = 1'000'000; })),
                   "info/index.json is larger than 1048576 bytes");
}

// A12: members of the inner tars count too, not only the zip's three.
TEST(Package, A12_member_count_cap) {
    TempDir t;
    RawMembers many;
    for (int i = 0; i < 20; ++i) many.push_back({fmt::format("lib/f{}", i), "x"});
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        const auto path = build_package(t.path(), PackageSpec{.format = fmt, .extra_pkg_members = many});
        EXPECT_NO_THROW(scan(path));
        EXPECT_REFUSED(scan(path, limits_with([](ScanLimits& l) { l.max_members = 10; })),
                       "has more than 10 members (raise with --max-members)");
    }
}

// A25: two members that extract to one path are two meanings of one
// package; refused in every tar and in the outer zip.
TEST(Package, A25_duplicate_index_json_members) {
    TempDir t;
    const std::string other = R"({"name": "evil", "version": "6.6", "build": "0", "build_number": 0})";
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        for (const char* dup : {"info/index.json", "info//index.json", "./info/index.json", "info/./index.json"}) {
            const auto path = build_package(t.path(), PackageSpec{.format = fmt, .extra_info_members = {{dup, other}}});
            EXPECT_REFUSED(scan(path), "info/index.json") << dup;
            EXPECT_REFUSED(scan(path), std::string(dup) == "info/index.json" ? "appears twice" : "are the same path")
                << dup;
        }
    }
    // In a .conda both inner tars extract into one tree.
    const auto path = build_package(t.path(), PackageSpec{.extra_pkg_members = {{"info/index.json", other}}});
    EXPECT_REFUSED(scan(path), "member 'info/index.json' appears twice");
}

TEST(Package, A25_duplicate_payload_and_zip_members) {
    TempDir t;
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2})
        for (const char* dup : {"bin/tool", "bin//tool", "./bin/tool", "bin/tool/"}) {
            const auto path = build_package(t.path(), PackageSpec{.format = fmt, .extra_pkg_members = {{dup, "evil"}}});
            EXPECT_REFUSED(scan(path), "bin/tool") << dup;
        }
    for (const char* dup : {"metadata.json", "./metadata.json"}) {
        const auto path = build_package(t.path(), PackageSpec{.extra_zip_members = {{dup, "{}"}}});
        EXPECT_REFUSED(scan(path), "metadata.json") << dup;
    }
    const auto twice = build_package(t.path(), PackageSpec{.name = "twice", .extra_zip_members = {{"info-twice-1.0-0.tar.zst", tar_bytes({}, Compression::Zstd)}}});
    EXPECT_REFUSED(scan(twice), "member 'info-twice-1.0-0.tar.zst' appears twice");
}

// A16: absolute paths and ".." segments never belong in a conda package;
// "./" and "//" are only spelling.
TEST(Package, A16_absolute_and_dotdot_member_paths) {
    TempDir t;
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        for (auto [bad, why] : {std::pair{"/etc/profile.d/x.sh", "has an absolute path"},
                                {"../escape", "has a '..' segment"},
                                {"lib/../../escape", "has a '..' segment"},
                                {"lib/..", "has a '..' segment"}}) {
            const auto path = build_package(t.path(), PackageSpec{.format = fmt, .extra_pkg_members = {{bad, "x"}}});
            EXPECT_REFUSED(scan(path), why) << bad;
        }
        const auto odd = build_package(
            t.path(), PackageSpec{.format = fmt, .extra_pkg_members = {{"./lib//a", "a"}, {"lib/./b", "b"}}});
        EXPECT_NO_THROW(scan(odd));
    }
    const auto newline = build_package(t.path(), PackageSpec{.name = "nl", .extra_pkg_members = {{"/a\nb", "x"}}});
    EXPECT_REFUSED(scan(newline), "member '/a\\x0ab' has an absolute path");
}

namespace {

// The position of the central directory entry whose name is `name`.
std::size_t cd_entry(const std::string& zip, const std::string& name) {
    for (std::size_t pos = zip.rfind("PK\x05\x06"); pos-- > 0;) {
        if (zip.compare(pos, 4, "PK\x01\x02") != 0) continue;
        const auto len = static_cast<std::size_t>(static_cast<unsigned char>(zip[pos + 28]) |
                                                  static_cast<unsigned char>(zip[pos + 29]) << 8);
        if (zip.compare(pos + 46, len, name) == 0 && len == name.size()) return pos;
    }
    throw std::runtime_error("test: no central directory entry " + name);
}

}  // namespace

// conda opens a .conda through its central directory; we stream its local
// headers. A file in which the two disagree means one thing to us and
// another to conda, so it is refused.
TEST(Package, A25_central_directory_must_agree_with_local_headers) {
    TempDir t;
    const auto path = build_package(t.path(), PackageSpec{.name = "zz"});
    const std::string good = read_file(path);
    EXPECT_NO_THROW(scan(path));

    // A name that only the central directory gives (same length).
    std::string renamed = good;
    const std::size_t meta = cd_entry(renamed, "metadata.json");
    renamed[meta + 46] = 'M';
    write_file(path, renamed);
    EXPECT_REFUSED(scan(path), "zip central directory names member");

    // Two directory entries that swap where their members are.
    std::string swapped = good;
    const std::size_t info = cd_entry(swapped, "info-zz-1.0-0.tar.zst");
    const std::size_t pkg = cd_entry(swapped, "pkg-zz-1.0-0.tar.zst");
    for (std::size_t i = 0; i < 4; ++i) std::swap(swapped[info + 42 + i], swapped[pkg + 42 + i]);
    write_file(path, swapped);
    EXPECT_REFUSED(scan(path), "zip central directory");

    // An entry pointing somewhere that is not its local header.
    std::string moved = good;
    moved[cd_entry(moved, "metadata.json") + 42] ^= 1;
    write_file(path, moved);
    EXPECT_REFUSED(scan(path), "zip central directory");

    write_file(path, good);
    EXPECT_NO_THROW(scan(path));
}

namespace {

std::uint32_t crc32_of(std::string_view d) {
    std::uint32_t c = 0xffffffffu;
    for (unsigned char b : d) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

void put_le(std::string& out, std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>(v >> (8 * i) & 0xff);
}

std::uint32_t get_le(const std::string& s, std::size_t pos, int bytes) {
    std::uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[pos + static_cast<std::size_t>(i)]);
    return v;
}

struct ZipMember {
    std::string name, data;
};

// A stored local header and its data, sizes and CRC in the header (as
// Python's zipfile writes a .conda).
std::string local_entry(const ZipMember& m) {
    std::string out = "PK\x03\x04";
    put_le(out, 20, 2);  // version needed
    put_le(out, 0, 2);   // flags: sizes are in this header
    put_le(out, 0, 2);   // stored
    put_le(out, 0, 4);   // time, date
    put_le(out, crc32_of(m.data), 4);
    put_le(out, static_cast<std::uint32_t>(m.data.size()), 4);
    put_le(out, static_cast<std::uint32_t>(m.data.size()), 4);
    put_le(out, static_cast<std::uint32_t>(m.name.size()), 2);
    put_le(out, 0, 2);
    return out + m.name + m.data;
}

// A stored zip of `members`; `point_at` moves a directory entry to another offset.
std::string stored_zip(const std::vector<ZipMember>& members, const std::map<std::string, std::uint32_t>& point_at = {}) {
    std::string out, dir;
    for (const auto& m : members) {
        const auto offset = static_cast<std::uint32_t>(out.size());
        out += local_entry(m);
        dir += "PK\x01\x02";
        put_le(dir, 20, 2);
        put_le(dir, 20, 2);
        put_le(dir, 0, 2);
        put_le(dir, 0, 2);
        put_le(dir, 0, 4);
        put_le(dir, crc32_of(m.data), 4);
        put_le(dir, static_cast<std::uint32_t>(m.data.size()), 4);
        put_le(dir, static_cast<std::uint32_t>(m.data.size()), 4);
        put_le(dir, static_cast<std::uint32_t>(m.name.size()), 2);
        put_le(dir, 0, 2);  // extra
        put_le(dir, 0, 2);  // comment
        put_le(dir, 0, 2);  // disk
        put_le(dir, 0, 2);  // internal attributes
        put_le(dir, 0, 4);  // external attributes
        auto moved = point_at.find(m.name);
        put_le(dir, moved != point_at.end() ? moved->second : offset, 4);
        dir += m.name;
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += dir;
    out += "PK\x05\x06";
    put_le(out, 0, 4);
    put_le(out, static_cast<std::uint32_t>(members.size()), 2);
    put_le(out, static_cast<std::uint32_t>(members.size()), 2);
    put_le(out, static_cast<std::uint32_t>(dir.size()), 4);
    put_le(out, cd_offset, 4);
    put_le(out, 0, 2);
    return out;
}

// The members of a stored zip, through its central directory.
std::vector<ZipMember> zip_members(const std::string& zip) {
    std::vector<ZipMember> out;
    const std::size_t eocd = zip.rfind("PK\x05\x06");
    std::size_t pos = get_le(zip, eocd + 16, 4);
    for (std::uint32_t i = 0, n = get_le(zip, eocd + 10, 2); i < n; ++i) {
        const std::uint32_t size = get_le(zip, pos + 20, 4), name_len = get_le(zip, pos + 28, 2);
        const std::uint32_t local = get_le(zip, pos + 42, 4);
        const std::size_t data = local + 30 + get_le(zip, local + 26, 2) + get_le(zip, local + 28, 2);
        out.push_back({zip.substr(pos + 46, name_len), zip.substr(data, size)});
        pos += 46 + name_len + get_le(zip, pos + 30, 2) + get_le(zip, pos + 32, 2);
    }
    return out;
}

std::string index_text(const std::string& name, const std::vector<std::string>& depends = {}) {
    return nlohmann::json{{"name", name}, {"version", "1.0"}, {"build", "0"}, {"build_number", 0},
                          {"depends", depends}, {"subdir", "noarch"}}
        .dump();
}

// A .tar.bz2 whose one tar is `members` then the end, and a .conda whose
// info tar (when `in_info`) or pkg tar is, beside a plain other tar.
std::vector<stdfs::path> raw_packages(const stdfs::path& dir, const std::string& stem, const std::string& members) {
    const std::string info = tar_member("info/index.json", index_text(stem.substr(0, stem.find('-'))));
    return {build_raw_package(dir / "bz2", stem, PackageFormat::TarBz2, info + members + tar_end()),
            build_raw_package(dir / "info", stem, PackageFormat::Conda, info + members + tar_end()),
            build_raw_package(dir / "pkg", stem, PackageFormat::Conda, info + tar_end(), members + tar_end())};
}

}  // namespace

// The reviewer's attack: the central directory's entry for the info tar
// points at a second, complete local header hidden inside another member's
// data. The stream reader reads the member at its real place; conda's
// zipfile would read the hidden one. The directory must point exactly where
// the stream reader found each member.
TEST(Package, A25_central_directory_pointing_into_member_data) {
    TempDir t;
    const auto built = build_package(t.path(), PackageSpec{.name = "zz"});
    auto members = zip_members(read_file(built));
    ASSERT_EQ(members.size(), 3u);
    const stdfs::path path = t / "zz-1.0-0.conda";
    write_file(path, stored_zip(members));
    EXPECT_NO_THROW(scan(path)) << "a plain stored zip with sizes in its local headers is a good .conda";

    std::vector<ZipMember> evil;
    std::size_t info = 0;
    for (std::size_t i = 0; i < members.size(); ++i)
        if (members[i].name == "info-zz-1.0-0.tar.zst") info = i;
    ZipMember carrier{members[info == 0 ? 1 : 0]};
    const std::uint32_t hidden_at = 30 + static_cast<std::uint32_t>(carrier.name.size() + carrier.data.size());
    carrier.data += local_entry(members[info]);  // a complete second header, inside the data
    std::uint32_t hidden = hidden_at;
    for (const auto& m : members) {
        if (&m == &members[info == 0 ? 1 : 0]) {
            evil.push_back(carrier);
        } else {
            evil.push_back(m);
        }
    }
    // The carrier must come first for the offset above to hold.
    ASSERT_EQ(evil.front().name, carrier.name);
    write_file(path, stored_zip(evil, {{members[info].name, hidden}}));
    EXPECT_REFUSED(scan(path), "zip central directory puts member 'info-zz-1.0-0.tar.zst' at offset");
}

// A25 (the reviewer's repro): pax GNU.sparse.name beside path. libarchive
// lets GNU.sparse.name win, Python's tarfile (conda) applies the records in
// order, so the later path wins: two readers, two member names, a second
// info/index.json or bin/ file that only conda would see. Refused in a
// .tar.bz2 and in both tars of a .conda.
TEST(Package, A25_pax_gnu_sparse_name_beside_path) {
    Deadline d(10);
    TempDir t;
    const std::string evil = index_text("bar", {"evil-dependency"});
    const std::string members =
        tar_member("info/files", "bin/bar\n") + tar_member("bin/bar", "#!/bin/sh\necho benign\n") +
        pax_header({{"GNU.sparse.name", "info/zz"}, {"path", "info/index.json"}}) + tar_member("info/zz", evil);
    const auto paths = raw_packages(t.path(), "bar-1.0-0", members);
    EXPECT_REFUSED(scan(paths[0]), "member 'info/index.json': pax keyword 'GNU.sparse.name' is not allowed");
    EXPECT_REFUSED(scan(paths[1]),
                   "info-bar-1.0-0.tar.zst: member 'info/index.json': pax keyword 'GNU.sparse.name' is not allowed");
    EXPECT_REFUSED(scan(paths[2]),
                   "pkg-bar-1.0-0.tar.zst: member 'info/index.json': pax keyword 'GNU.sparse.name' is not allowed");
    // In the payload: a second bin/bar.
    const auto pkg = raw_packages(t.path() / "b", "bar-1.0-0",
                                  tar_member("bin/bar", "benign") + pax_header({{"GNU.sparse.name", "zz"}, {"path", "bin/bar"}}) +
                                      tar_member("zz", "EVIL"));
    for (const auto& p : pkg) EXPECT_REFUSED(scan(p), "member 'bin/bar': pax keyword 'GNU.sparse.name' is not allowed");
    // The same archives without the second name are read as before.
    for (const auto& p : raw_packages(t.path() / "ok", "bar-1.0-0",
                                      tar_member("info/files", "bin/bar\n") + tar_member("bin/bar", "benign") +
                                          pax_header({{"path", "info/zz"}}) + tar_member("info/zz", evil))) {
        const PackageScan s = scan(p);
        ASSERT_TRUE(s.index_json);
        EXPECT_EQ((*s.index_json)["depends"], nlohmann::json::array());
    }
}

// A25: a keyword given twice in one pax header (which one wins is up to
// the reader), and any keyword outside the small set both readers apply
// the same way.
TEST(Package, A25_pax_duplicate_and_unknown_keywords) {
    Deadline d(10);
    TempDir t;
    int n = 0;
    for (auto [records, why] : std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, std::string>>{
             {{{"path", "bin/a"}, {"path", "bin/b"}}, "member 'bin/b': pax keyword 'path' appears twice"},
             {{{"size", "4"}, {"size", "4"}}, "member 'bin/x': pax keyword 'size' appears twice"},
             {{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}}, "pax keyword 'GNU.sparse.major' is not allowed"},
             {{{"hdrcharset", "BINARY"}, {"path", "bin/c"}}, "member 'bin/c': pax keyword 'hdrcharset' is not allowed"},
             {{{"SCHILY.filetype", "directory"}}, "pax keyword 'SCHILY.filetype' is not allowed"},
             {{{"path", std::string("bin/a\0b", 7)}}, "pax keyword 'path' has a NUL byte"},
             {{{"size", "0x4"}}, "pax keyword 'size' is not a number"},
         }) {
        for (const auto& p : raw_packages(t.path() / std::to_string(n++), "dup-1.0-0",
                                          pax_header(records) + tar_member("bin/x", "data")))
            EXPECT_REFUSED(scan(p), why) << p;
    }
    // Extended attributes and times are fine.
    for (const auto& p : raw_packages(t.path() / "ok", "dup-1.0-0",
                                      pax_header({{"mtime", "1700000000.5"},
                                                  {"SCHILY.xattr.user.x", "1"},
                                                  {"uid", "0"},
                                                  {"path", "bin/long"}}) +
                                          tar_member("bin/x", "data")))
        EXPECT_NO_THROW(scan(p));
}

// A25: a global pax header applies to every later member in Python's
// tarfile; libarchive applies only some of it.
TEST(Package, A25_pax_global_header) {
    Deadline d(10);
    TempDir t;
    for (const auto& p : raw_packages(t.path(), "glob-1.0-0",
                                      pax_header({{"path", "info/index.json"}}, 'g') + tar_member("bin/x", "data")))
        EXPECT_REFUSED(scan(p), "is a pax global header (type 'g'), which is not allowed");
}

// A25: a GNU long name and a pax path for one member (which wins depends on
// their order in Python's tarfile); two long names or two pax headers.
TEST(Package, A25_gnu_long_name_beside_pax_path) {
    Deadline d(10);
    TempDir t;
    int n = 0;
    for (auto [members, why] : std::vector<std::pair<std::string, std::string>>{
             {gnu_long("bin/evil") + pax_header({{"path", "bin/x"}}) + tar_member("bin/y", "data"),
              "member 'bin/x' has both a GNU long name and a pax path"},
             {pax_header({{"path", "bin/x"}}) + gnu_long("bin/evil") + tar_member("bin/y", "data"),
              "member 'bin/x' has both a GNU long name and a pax path"},
             {gnu_long("bin/evil", 'K') + pax_header({{"linkpath", "bin/x"}}) +
                  tar_member("bin/y", "", '2', {.link = "bin/z"}),
              "member 'bin/y' has both a GNU long link and a pax linkpath"},
             {gnu_long("bin/a") + gnu_long("bin/b") + tar_member("bin/y", "data"), "is a second 'L' header"},
             {pax_header({{"path", "bin/a"}}) + pax_header({{"path", "bin/b"}}) + tar_member("bin/y", "data"),
              "is a second 'x' header"},
         }) {
        for (const auto& p : raw_packages(t.path() / std::to_string(n++), "gnu-1.0-0", members))
            EXPECT_REFUSED(scan(p), why) << p;
    }
    // A GNU long name alone is fine.
    const std::string long_name = "lib/" + std::string(150, 'n');
    for (const auto& p : raw_packages(t.path() / "ok", "gnu-1.0-0",
                                      gnu_long(long_name) + tar_member("lib/short", "data", '0', {.gnu_magic = true})))
        EXPECT_NO_THROW(scan(p));
}

// A25: headers the two readers parse differently in other ways: numbers
// Python's tarfile cannot read (it takes them as the end of the archive),
// a ustar prefix in a non-ustar header (Python reads it, libarchive does
// not), member types other than files, links and directories, data on a
// link, bytes in an extension's padding, malformed pax records.
TEST(Package, A25_tar_headers_read_one_way) {
    Deadline d(10);
    TempDir t;
    const std::string pax_body = pax_record("path", "bin/x");
    std::string padding_data = pax_header({{"path", "bin/x"}});
    padding_data[512 + pax_body.size() + 3] = '1';
    std::string bad_len = pax_header({{"path", "bin/x"}});
    bad_len[512] = '9';
    int n = 0;
    for (auto [members, why] : std::vector<std::pair<std::string, std::string>>{
             {tar_member("bin/x", "data", '0', {.raw = {{100, "07_44"}}}), "has a malformed mode field"},
             {tar_member("bin/x", "data", '0', {.raw = {{136, "+1500000000"}}}), "has a malformed mtime field"},
             {tar_member("bin/x", "data", '0', {.prefix = "evil", .gnu_magic = true}),
              "has a ustar prefix but is not a ustar header"},
             {tar_member("bin/x", "data", 'X'), "member 'bin/x' has type 'X', which is not allowed"},
             {tar_member("bin/x", "data", 'S'), "member 'bin/x' has type 'S', which is not allowed"},
             {tar_member("bin/x", "data", '2', {.link = "bin/y"}), "member 'bin/x' of type '2' has 4 bytes of data"},
             {tar_member("bin/x/", "data", '0'), "member 'bin/x/' is a file but its name ends with '/'"},
             {padding_data + tar_member("bin/y", "data"), "has data in its padding"},
             {bad_len + tar_member("bin/y", "data"), "has a malformed record at byte 0"},
             {pax_header({{"path", "bin/x"}}), "ends the archive right after an extension header"},
         }) {
        for (const auto& p : raw_packages(t.path() / std::to_string(n++), "odd-1.0-0", members))
            EXPECT_REFUSED(scan(p), why) << p << " " << why;
    }
    // A bad checksum is refused too (libarchive already did).
    std::string bad_sum = tar_member("bin/x", "data");
    bad_sum[0] = 'c';
    for (const auto& p : raw_packages(t.path() / "sum", "odd-1.0-0", bad_sum)) EXPECT_REFUSED(scan(p), "bad checksum");
}

// Legitimate long paths: libarchive's pax writer (build_package), a
// Python-tarfile-style pax header written by hand, ustar prefixes.
TEST(Package, A25_legitimate_long_paths_still_accepted) {
    Deadline d(10);
    TempDir t;
    const std::string long_path = "lib/" + std::string(120, 'd') + "/" + std::string(150, 'f');
    for (auto fmt : {PackageFormat::Conda, PackageFormat::TarBz2}) {
        const auto path = build_package(t.path(), PackageSpec{.format = fmt, .files = {{long_path, "x"}}});
        EXPECT_NO_THROW(scan(path));
    }
    const std::string members =
        pax_header({{"path", long_path}}) + tar_member(long_path.substr(0, 100), "x") +
        pax_header({{"linkpath", long_path}, {"path", "lib/link"}}) + tar_member("lib/link", "", '2', {.link = "x"}) +
        tar_member(std::string(90, 'n'), "y", '0', {.prefix = "lib/" + std::string(100, 'p')}) +
        tar_member("lib/dir/", "", '5');
    for (const auto& p : raw_packages(t.path() / "raw", "long-1.0-0", members)) EXPECT_NO_THROW(scan(p)) << p;
}

// Member names are UTF-8 (pax paths always are): a package with a non-ASCII
// file name is read, whatever the process locale (the C locale of a test or
// a service made libarchive refuse the name).
TEST(Package, NonAsciiMemberNamesAreRead) {
    TempDir t;
    const std::string name = "share/donn\xc3\xa9" "es-\xe6\x97\xa5\xe6\x9c\xac.txt";
    const std::string members = pax_header({{"path", name}}) + tar_member("share/donnees.txt", "x");
    for (const auto& p : raw_packages(t.path() / "raw", "utf-1.0-0", members)) EXPECT_NO_THROW(scan(p)) << p;
}
