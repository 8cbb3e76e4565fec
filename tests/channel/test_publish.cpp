// conda-guard index: conda's repodata format, incremental, deterministic,
// bad packages left out, signing with info.guard.
#include <condaguard/channel/publish.hpp>
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verifier.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <sys/stat.h>

using namespace condaguard;
using namespace condaguard::test;
using json = nlohmann::json;

namespace {

class Index : public ::testing::Test {
protected:
    void SetUp() override {
        build_package(ch() / "noarch", PackageSpec{.name = "alpha", .depends = {"beta >=1"}});
        build_package(ch() / "noarch", PackageSpec{.name = "beta", .version = "1.2", .format = PackageFormat::TarBz2});
        build_package(ch() / "linux-64", PackageSpec{.name = "gamma", .build = "h0_0", .subdir = "linux-64"});
    }
    stdfs::path ch() const { return t_ / "channel"; }
    json repodata(const std::string& sd) { return json::parse(read_file(ch() / sd / "repodata.json")); }
    std::vector<SubdirReport> run(IndexOptions o = {}) { return index_channel(ch(), o); }
    IndexOptions signing(const PrivateKey& k, bool sign_packages = false) {
        return IndexOptions{.jobs = 0,
                            .signing = IndexSigning{.key_name = KeyName("chan"),
                                                    .key = &k,
                                                    .channel_id = "example-channel",
                                                    .lifetime = std::chrono::hours(12),
                                                    .sign_packages = sign_packages,
                                                    .signed_at = *parse_time("2026-11-25T10:00:00Z")}};
    }
    TempDir t_;
};

}  // namespace

TEST_F(Index, WritesCondaRepodataFormat) {
    auto reports = run();
    ASSERT_EQ(reports.size(), 2u);
    EXPECT_EQ(reports[0].subdir, "linux-64");
    EXPECT_EQ(reports[1].subdir, "noarch");
    json rd = repodata("noarch");
    EXPECT_EQ(rd["info"], (json{{"subdir", "noarch"}}));
    EXPECT_EQ(rd["repodata_version"], 1);
    EXPECT_EQ(rd["removed"], json::array());
    ASSERT_TRUE(rd["packages.conda"].contains("alpha-1.0-0.conda"));
    ASSERT_TRUE(rd["packages"].contains("beta-1.2-0.tar.bz2"));
    const json& a = rd["packages.conda"]["alpha-1.0-0.conda"];
    const std::string bytes = read_file(ch() / "noarch" / "alpha-1.0-0.conda");
    EXPECT_EQ(a["sha256"], to_hex(sha256_bytes(bytes)));
    EXPECT_EQ(a["size"], bytes.size());
    EXPECT_EQ(a["md5"].get<std::string>().size(), 32u);
    EXPECT_EQ(a["depends"], json::array({"beta >=1"}));
    EXPECT_EQ(a["name"], "alpha");
    EXPECT_EQ(a["build_number"], 0);
    EXPECT_FALSE(a.contains("sig")) << "no .sig beside it";
    EXPECT_EQ(repodata("linux-64")["packages.conda"]["gamma-1.0-h0_0.conda"]["subdir"], "linux-64");
}

TEST_F(Index, EveryRecordHasDependsAsCondaNeeds) {
    build_package(ch() / "noarch", PackageSpec{.name = "nodeps", .index_overrides = {{"depends", nullptr}}});
    build_package(ch() / "noarch", PackageSpec{.name = "baddeps", .index_overrides = {{"depends", "python"}}});
    build_package(ch() / "noarch", PackageSpec{.name = "badcons", .index_overrides = {{"constrains", {1, 2}}}});
    auto reports = run();
    json rd = repodata("noarch");
    EXPECT_EQ(rd["packages.conda"]["nodeps-1.0-0.conda"]["depends"], json::array());
    EXPECT_FALSE(rd["packages.conda"].contains("baddeps-1.0-0.conda"));
    EXPECT_FALSE(rd["packages.conda"].contains("badcons-1.0-0.conda"));
    ASSERT_EQ(reports[1].excluded.size(), 2u);
    EXPECT_EQ(reports[1].excluded[0].reason, "info/index.json 'constrains' is not a list of strings");
    EXPECT_EQ(reports[1].excluded[1].reason, "info/index.json 'depends' is not a list of strings");
}

TEST_F(Index, MarksSignedPackagesWithSigDot) {
    write_file(ch() / "noarch" / "alpha-1.0-0.conda.sig", "x y\n");
    run();
    EXPECT_EQ(repodata("noarch")["packages.conda"]["alpha-1.0-0.conda"]["sig"], ".");
    EXPECT_FALSE(repodata("noarch")["packages"]["beta-1.2-0.tar.bz2"].contains("sig"));
}

TEST_F(Index, IsDeterministicAcrossRunsCopiesAndJobCounts) {
    run(IndexOptions{.jobs = 1, .signing = std::nullopt});
    const std::string one = read_file(ch() / "noarch" / "repodata.json");
    run(IndexOptions{.jobs = 2, .signing = std::nullopt});
    EXPECT_EQ(read_file(ch() / "noarch" / "repodata.json"), one);
    // A copy with new inodes and times, indexed from scratch, gives the same bytes.
    TempDir other;
    stdfs::create_directories(other / "channel" / "noarch");
    for (const char* f : {"alpha-1.0-0.conda", "beta-1.2-0.tar.bz2"})
        stdfs::copy_file(ch() / "noarch" / f, other / "channel" / "noarch" / f);
    index_channel(other / "channel", IndexOptions{.jobs = 2, .signing = std::nullopt});
    EXPECT_EQ(read_file(other / "channel" / "noarch" / "repodata.json"), one);
}

TEST_F(Index, IsIncremental) {
    auto first = run();
    EXPECT_EQ(first[1].scanned, 2u);
    EXPECT_EQ(first[1].reused, 0u);
    auto second = run();
    EXPECT_EQ(second[1].scanned, 0u);
    EXPECT_EQ(second[1].reused, 2u);
    // A changed package is read again; the unchanged one keeps its entry.
    build_package(ch() / "noarch", PackageSpec{.name = "alpha", .depends = {"beta >=1.2"}});
    auto third = run();
    EXPECT_EQ(third[1].scanned, 1u);
    EXPECT_EQ(third[1].reused, 1u);
    EXPECT_EQ(repodata("noarch")["packages.conda"]["alpha-1.0-0.conda"]["depends"], json::array({"beta >=1.2"}));
    // A removed package leaves the index.
    stdfs::remove(ch() / "noarch" / "beta-1.2-0.tar.bz2");
    run();
    EXPECT_TRUE(repodata("noarch")["packages"].empty());
}

TEST_F(Index, BadPackagesAreReportedAndLeftOut) {
    const auto corrupt = build_package(ch() / "noarch", PackageSpec{.name = "corrupt"});
    const std::string bytes = read_file(corrupt);
    write_file(corrupt, bytes.substr(0, bytes.size() - 100));
    build_package(ch() / "noarch", PackageSpec{.name = "noindex", .with_index_json = false});
    build_package(ch() / "noarch", PackageSpec{.name = "liar", .index_overrides = {{"version", "9.9"}}});
    build_package(ch() / "noarch", PackageSpec{.name = "wrongdir", .subdir = "linux-64"});
    write_file(ch() / "noarch" / "notapackage.conda", "junk");
    auto reports = run();
    const auto& ex = reports[1].excluded;
    ASSERT_EQ(ex.size(), 5u);
    auto reason = [&](const std::string& f) {
        for (const auto& p : ex)
            if (p.file == f) return p.reason;
        return std::string("(not excluded)");
    };
    EXPECT_NE(reason("corrupt-1.0-0.conda").find("corrupt archive"), std::string::npos) << reason("corrupt-1.0-0.conda");
    EXPECT_EQ(reason("noindex-1.0-0.conda"), "has no info/index.json");
    EXPECT_EQ(reason("liar-1.0-0.conda"), "info/index.json says version '9.9' but the file name says '1.0'");
    EXPECT_NE(reason("wrongdir-1.0-0.conda").find("subdir 'linux-64'"), std::string::npos);
    EXPECT_NE(reason("notapackage.conda").find("NAME-VERSION-BUILD"), std::string::npos);
    json rd = repodata("noarch");
    EXPECT_EQ(rd["packages.conda"].size(), 1u) << rd.dump();
    EXPECT_TRUE(rd["packages.conda"].contains("alpha-1.0-0.conda"));
}

TEST_F(Index, SigningWritesGuardAndSignsTheFinalBytes) {
    Keys keys;
    const PrivateKey& k = keys.add("chan");
    auto reports = run(signing(k));
    ASSERT_TRUE(reports[1].guard);
    json g = repodata("noarch")["info"]["guard"];
    EXPECT_EQ(g, (json{{"channel", "example-channel"},
                       {"subdir", "noarch"},
                       {"version", 1},
                       {"signed_at", "2026-11-25T10:00:00Z"},
                       {"expires", "2026-11-25T22:00:00Z"}}));
    KeyStore store(keys.keys());
    Verifier v(store);
    EXPECT_EQ(v.verify_file(ch() / "noarch" / "repodata.json").verdict, Verdict::Valid);
    EXPECT_EQ(v.verify_file(ch() / "linux-64" / "repodata.json").verdict, Verdict::Valid);
    // The version grows with every signing.
    run(signing(k));
    EXPECT_EQ(repodata("noarch")["info"]["guard"]["version"], 2);
    // An unsigned run removes the signature that no longer matches.
    auto unsigned_run = run();
    EXPECT_TRUE(unsigned_run[1].removed_stale_signature);
    EXPECT_FALSE(stdfs::exists(ch() / "noarch" / "repodata.json.sig"));
    // and the next signing still goes up (the cache remembers the version).
    run(signing(k));
    EXPECT_EQ(repodata("noarch")["info"]["guard"]["version"], 3);
}

// Without the cache, the version comes from the previous index, wherever its
// info object stands (it is read only as far as info.guard.version).
TEST_F(Index, VersionGrowsFromThePreviousIndexWithoutTheCache) {
    Keys keys;
    const PrivateKey& k = keys.add("chan");
    run(signing(k));
    run(signing(k));
    stdfs::remove_all(ch() / "noarch" / ".cache");
    run(signing(k));
    EXPECT_EQ(repodata("noarch")["info"]["guard"]["version"], 3);
    stdfs::remove_all(ch() / "noarch" / ".cache");
    write_file(ch() / "noarch" / "repodata.json",
               R"({"packages": {"x-1-0.tar.bz2": {"depends": [], "n": [1, {"version": 99}]}},)"
               R"( "info": {"subdir": "noarch", "guard": {"channel": "c", "version": 41}}})");
    run(signing(k));
    EXPECT_EQ(repodata("noarch")["info"]["guard"]["version"], 42) << "only info.guard.version counts";
}

TEST_F(Index, SignPackagesSignsOnlyTheUnsignedInTheSamePass) {
    Keys keys;
    const PrivateKey& k = keys.add("chan");
    write_file(ch() / "noarch" / "alpha-1.0-0.conda.sig", "other-key AAAA\n");
    auto reports = run(signing(k, true));
    EXPECT_EQ(reports[1].signed_packages, std::vector<std::string>{"beta-1.2-0.tar.bz2"});
    EXPECT_EQ(reports[0].signed_packages, std::vector<std::string>{"gamma-1.0-h0_0.conda"});
    EXPECT_EQ(read_file(ch() / "noarch" / "alpha-1.0-0.conda.sig"), "other-key AAAA\n") << "left alone";
    KeyStore store(keys.keys());
    Verifier v(store);
    EXPECT_EQ(v.verify_file(ch() / "noarch" / "beta-1.2-0.tar.bz2").verdict, Verdict::Valid);
    EXPECT_EQ(repodata("noarch")["packages"]["beta-1.2-0.tar.bz2"]["sig"], ".");
}

// The cache feeds records into what gets signed: a signing run trusts it only
// with a good signature by the signing key, so an edited cache is ignored.
TEST_F(Index, SigningRunsDoNotTrustAnEditedOrUnsignedCache) {
    Keys keys;
    const PrivateKey& k = keys.add("chan");
    run(signing(k));
    auto reused = run(signing(k));
    EXPECT_EQ(reused[1].reused, 2u) << "a cache this key signed is used";
    const stdfs::path cache = ch() / "noarch" / index_cache_path;
    json c = json::parse(read_file(cache));
    c["packages"]["alpha-1.0-0.conda"]["record"]["depends"] = json::array({"evil"});
    write_file(cache, c.dump() + "\n");
    auto poisoned = run(signing(k));
    EXPECT_EQ(poisoned[1].scanned, 2u);
    EXPECT_EQ(poisoned[1].reused, 0u);
    EXPECT_EQ(repodata("noarch")["packages.conda"]["alpha-1.0-0.conda"]["depends"], json::array({"beta >=1"}));
    // A cache written by an unsigned run is not trusted by the next signing run either.
    run();
    EXPECT_FALSE(stdfs::exists(cache.string() + ".sig"));
    auto after_unsigned = run(signing(k));
    EXPECT_EQ(after_unsigned[1].scanned, 2u);
}

TEST_F(Index, RealChannelRecordsMatchUpstream) {
    auto shared = shared_dir();
    if (!shared) GTEST_SKIP() << "../shared is not present";
    const auto repo = *shared / "fixtures" / "real" / "conda_format_repo";
    TempDir t;
    for (const char* sd : {"linux-64", "win-64"}) {
        stdfs::create_directories(t / sd);
        for (const auto& e : stdfs::directory_iterator(repo / sd))
            if (e.path().extension() != ".json") stdfs::copy_file(e.path(), t / sd / e.path().filename());
    }
    index_channel(t.path(), {});
    for (const char* sd : {"linux-64", "win-64"}) {
        const json ours = json::parse(read_file(t / sd / "repodata.json"));
        const json theirs = json::parse(read_file(repo / sd / "repodata.json"));
        for (const char* key : {"packages", "packages.conda"}) {
            for (const auto& [fn, rec] : ours[key].items()) {
                ASSERT_TRUE(theirs[key].contains(fn)) << fn;
                for (const char* field : {"name", "version", "build", "build_number", "depends", "md5", "sha256", "size",
                                          "subdir", "license"})
                    EXPECT_EQ(rec[field], theirs[key][fn][field]) << fn << " " << field;
            }
        }
    }
}

// ---- writes stay inside the channel ----
// Named A16 (symlink escape): the same escape as an archive member, here
// through the channel's own folders and files instead of a package's.

namespace {

// Every file under `dir`, with its bytes, to show nothing there changed.
std::map<std::string, std::string> snapshot(const stdfs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : stdfs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) out[e.path().string()] = read_file(e.path());
    return out;
}

}  // namespace

TEST_F(Index, A16_symlinked_subdir_is_reported_not_followed) {
    TempDir outside;
    build_package(outside / "linux-64", PackageSpec{.name = "zeta", .build = "h0_0", .subdir = "linux-64"});
    stdfs::remove_all(ch() / "linux-64");
    stdfs::create_directory_symlink(outside / "linux-64", ch() / "linux-64");
    const auto before = snapshot(outside.path());
    auto reports = run();
    EXPECT_EQ(snapshot(outside.path()), before);
    ASSERT_EQ(reports.size(), 2u);
    EXPECT_EQ(reports[0].subdir, "linux-64");
    ASSERT_EQ(reports[0].excluded.size(), 1u);
    EXPECT_NE(reports[0].excluded[0].reason.find("is a symbolic link, not a directory"), std::string::npos);
}

TEST_F(Index, A16_symlinked_noarch_is_not_written_through) {
    TempDir outside;
    stdfs::remove_all(ch() / "noarch");
    stdfs::create_directories(outside / "noarch");
    stdfs::create_directory_symlink(outside / "noarch", ch() / "noarch");
    auto reports = run();
    EXPECT_TRUE(stdfs::is_empty(outside / "noarch"));
    ASSERT_EQ(reports.size(), 2u);
    EXPECT_EQ(reports[1].subdir, "noarch");
    EXPECT_EQ(reports[1].excluded.size(), 1u);
}

TEST_F(Index, A16_symlinked_cache_repodata_or_sig_refuses_the_run) {
    const auto& k = cached_key(KeyType::Ed25519, 0);
    for (const std::string planted : {".cache", "repodata.json", "repodata.json.sig", ".cache/condaguard-index.json",
                                      "alpha-1.0-0.conda.sig"}) {
        SCOPED_TRACE(planted);
        TempDir outside;
        write_file(outside / "target", "outside\n");
        stdfs::create_directories(outside / "dir");
        run(signing(k, true));  // a complete signed channel first
        const auto p = ch() / "noarch" / planted;
        stdfs::remove_all(p);
        if (planted == ".cache") stdfs::create_directory_symlink(outside / "dir", p);
        else stdfs::create_symlink(outside / "target", p);
        const auto before = snapshot(outside.path());
        EXPECT_THROW(run(signing(k, true)), std::runtime_error);
        EXPECT_EQ(snapshot(outside.path()), before);
        EXPECT_TRUE(stdfs::is_symlink(p)) << "left in place for the owner to see";
        stdfs::remove(p);
    }
}

TEST_F(Index, A25_package_index_json_with_a_duplicate_key_is_left_out) {
    build_package(ch() / "noarch",
                  PackageSpec{.name = "dup",
                              .format = PackageFormat::TarBz2,
                              .files = {{"info/index.json", R"({"name": "dup", "version": "1.0", "build": "0",)"
                                                            R"( "build_number": 0, "depends": [], "subdir": "noarch",)"
                                                            R"( "nam\u0065": "other"})"}},
                              .with_index_json = false});
    auto reports = run();
    EXPECT_FALSE(repodata("noarch")["packages"].contains("dup-1.0-0.tar.bz2"));
    ASSERT_EQ(reports[1].excluded.size(), 1u);
    EXPECT_NE(reports[1].excluded[0].reason.find("info/index.json: duplicate key 'name'"), std::string::npos)
        << reports[1].excluded[0].reason;
}
