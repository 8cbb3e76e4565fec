// The audit of an installed environment: one change per test, named after
// the threat it closes (A23 post-install tampering, A24 tampered records).
#include <condaguard/audit/audit.hpp>
#include <condaguard/audit/record.hpp>
#include <condaguard/audit/untracked.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>

#include "../support/prefix.hpp"
#include "../support/signed_channel.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard::test {
namespace {

class AuditEnv : public ::testing::Test {
protected:
    void SetUp() override {
        env.install(demo);
        env.install(other);
    }
    AuditReport audit(AuditOptions o = {}) {
        o.pkgs_dirs = {env.pkgs()};
        o.jobs = 2;
        return audit_prefix(env.prefix(), o, Environment{.keys_dir = env.keys_dir(), .state_dir = state.path()});
    }
    static PackageAudit package(const AuditReport& r, const std::string& stem) {
        for (const auto& p : r.packages)
            if (p.result.path == "conda-meta/" + stem + ".json") return p;
        throw std::runtime_error("no package " + stem);
    }
    static std::string findings(const PackageAudit& p) {
        std::string out;
        for (const auto& f : p.files) out += f.path + " " + std::to_string(f.flags) + " " + f.reason + "\n";
        return out;
    }
    TempDir state;
    TestEnv env;
    EnvPackage demo = typical_package("demo");
    EnvPackage other = typical_package("other");
};

TEST_F(AuditEnv, clean_environment_is_valid_with_no_findings) {
    const AuditReport r = audit();
    ASSERT_EQ(r.packages.size(), 2u);
    for (const auto& p : r.packages) {
        EXPECT_EQ(p.result.verdict, Verdict::Valid) << p.result.reason;
        EXPECT_TRUE(p.files_authenticated);
        EXPECT_TRUE(p.files.empty()) << findings(p);
        EXPECT_EQ(p.files_checked, 6u);
        EXPECT_EQ(p.result.key, "tester");
    }
    EXPECT_TRUE(r.untracked.empty()) << r.untracked.front().path;
    EXPECT_FALSE(r.walk_error);
}

TEST_F(AuditEnv, A23_changed_byte_is_a_digest_finding) {
    // A file hard-linked from the cache: write a new file in its place (the
    // cache copy keeps its bytes; the audit reads the signed archive anyway).
    const auto f = env.prefix() / "share/demo/data.txt";
    std::string d = read_file(f);
    d[0] = 'S';
    stdfs::remove(f);
    write_file(f, d);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].path, "share/demo/data.txt");
    EXPECT_EQ(p.files[0].flags, unsigned{FlagDigest});
}

TEST_F(AuditEnv, A23_changed_prefix_replaced_text_file) {
    const auto f = env.prefix() / "etc/demo.conf";
    write_file(f, read_file(f) + "extra=1\n");
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].path, "etc/demo.conf");
    EXPECT_EQ(p.files[0].flags, unsigned{FlagDigest});
}

TEST_F(AuditEnv, A23_changed_prefix_replaced_binary_file) {
    const auto f = env.prefix() / "lib/libdemo.a";
    std::string d = read_file(f);
    d[1] = 'X';
    write_file(f, d);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].path, "lib/libdemo.a");
    EXPECT_EQ(p.files[0].flags, unsigned{FlagDigest});
}

TEST_F(AuditEnv, A23_changed_size) {
    const auto f = env.prefix() / "lib/libdemo.so.1";
    stdfs::remove(f);
    write_file(f, "short");
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagSize | FlagDigest});
}

TEST_F(AuditEnv, A23_executable_bit_added) {
    ASSERT_EQ(::chmod((env.prefix() / "share/demo/data.txt").c_str(), 0755), 0);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagMode});
}

TEST_F(AuditEnv, A23_executable_bit_removed) {
    ASSERT_EQ(::chmod((env.prefix() / "bin/demo").c_str(), 0644), 0);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].path, "bin/demo");
    EXPECT_EQ(p.files[0].flags, unsigned{FlagMode});
}

TEST_F(AuditEnv, A23_symlink_target_changed) {
    const auto l = env.prefix() / "lib/libdemo.so";
    stdfs::remove(l);
    stdfs::create_symlink("/tmp/evil.so", l);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagLink});
    EXPECT_NE(p.files[0].reason.find("/tmp/evil.so"), std::string::npos);
}

TEST_F(AuditEnv, A23_file_replaced_by_symlink_is_not_followed) {
    const auto f = env.prefix() / "share/demo/data.txt";
    write_file(env.prefix() / "../elsewhere.txt", read_file(f));
    stdfs::remove(f);
    stdfs::create_symlink("../../../elsewhere.txt", f);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagLink});
}

TEST_F(AuditEnv, A23_directory_replaced_by_symlink_is_not_followed) {
    stdfs::rename(env.prefix() / "share/demo", env.prefix() / "../demo-moved");
    stdfs::create_symlink("../../demo-moved", env.prefix() / "share/demo");
    const AuditReport r = audit();
    const PackageAudit& p = package(r, "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagLink});
}

TEST_F(AuditEnv, A23_deleted_file_is_missing) {
    stdfs::remove(env.prefix() / "bin/demo");
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagMissing});
}

TEST_F(AuditEnv, A23_added_file_is_untracked) {
    write_file(env.prefix() / "bin/backdoor", "#!/bin/sh\n", 0755);
    const AuditReport r = audit();
    ASSERT_EQ(r.untracked.size(), 1u);
    EXPECT_EQ(r.untracked[0].path, "bin/backdoor");
    EXPECT_EQ(r.untracked[0].flags, unsigned{FlagUntracked});
}

TEST_F(AuditEnv, A23_added_pth_and_sitecustomize_are_reported) {
    stdfs::create_directories(env.prefix() / "lib/python3.12/site-packages/__pycache__");
    write_file(env.prefix() / "lib/python3.12/site-packages/evil.pth", "import os\n");
    write_file(env.prefix() / "lib/python3.12/site-packages/sitecustomize.py", "import os\n");
    write_file(env.prefix() / "lib/python3.12/site-packages/__pycache__/sitecustomize.cpython-312.pyc", "x");
    const AuditReport r = audit();
    std::vector<std::string> paths;
    for (const auto& f : r.untracked) paths.push_back(f.path);
    EXPECT_EQ(paths, (std::vector<std::string>{"lib/python3.12/site-packages/__pycache__/sitecustomize.cpython-312.pyc",
                                               "lib/python3.12/site-packages/evil.pth",
                                               "lib/python3.12/site-packages/sitecustomize.py"}));
}

TEST_F(AuditEnv, A24_edited_record_and_file_caught_by_the_signed_paths_json) {
    // The attacker changes a file and puts its hash into the record, and the
    // record's own sha256 is edited to match nothing signed.
    const auto f = env.prefix() / "share/demo/data.txt";
    stdfs::remove(f);
    write_file(f, "evil\n");
    nlohmann::json rec = env.read_record(demo);
    for (auto& e : rec["paths_data"]["paths"])
        if (e["_path"] == "share/demo/data.txt") {
            e["sha256"] = to_hex(sha256_bytes("evil\n"));
            e["sha256_in_prefix"] = e["sha256"];
            e["size_in_bytes"] = 5;
        }
    env.write_record(demo, rec);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    EXPECT_EQ(p.result.verdict, Verdict::Valid) << p.result.reason;  // the record still names the signed archive
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagSize | FlagDigest | FlagRecord}) << p.files[0].reason;
}

TEST_F(AuditEnv, A24_record_sha256_not_the_signed_archive_is_invalid) {
    nlohmann::json rec = env.read_record(demo);
    rec["sha256"] = std::string(64, 'a');
    env.write_record(demo, rec);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    EXPECT_EQ(p.result.verdict, Verdict::Invalid);
    EXPECT_NE(p.result.reason.find("sha256"), std::string::npos) << p.result.reason;
    EXPECT_FALSE(p.files_authenticated);
}

TEST_F(AuditEnv, A24_record_size_not_the_signed_archive_is_invalid) {
    nlohmann::json rec = env.read_record(demo);
    rec["size"] = 1;
    env.write_record(demo, rec);
    EXPECT_EQ(package(audit(), "demo-1.0-0").result.verdict, Verdict::Invalid);
}

TEST_F(AuditEnv, A24_record_url_naming_another_file_is_invalid) {
    nlohmann::json rec = env.read_record(demo);
    rec["url"] = "https://conda.example.org/demo/linux-64/other-1.0-0.conda";
    env.write_record(demo, rec);
    EXPECT_EQ(package(audit(), "demo-1.0-0").result.verdict, Verdict::Invalid);
}

TEST_F(AuditEnv, A24_record_lists_a_file_the_package_lacks) {
    write_file(env.prefix() / "bin/extra", "#!/bin/sh\n", 0755);
    nlohmann::json rec = env.read_record(demo);
    rec["files"].push_back("bin/extra");
    rec["paths_data"]["paths"].push_back({{"_path", "bin/extra"}, {"path_type", "hardlink"},
                                          {"sha256", to_hex(sha256_bytes("#!/bin/sh\n"))}, {"size_in_bytes", 10}});
    env.write_record(demo, rec);
    const AuditReport r = audit();
    const PackageAudit& p = package(r, "demo-1.0-0");
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].flags, unsigned{FlagRecord});
    ASSERT_EQ(r.untracked.size(), 1u);  // only the edited record claims it
    EXPECT_EQ(r.untracked[0].path, "bin/extra");
}

TEST_F(AuditEnv, A24_tarball_gone_is_missing_sig_and_checked_against_the_record) {
    stdfs::remove(env.pkgs() / demo.fn());
    write_file(env.prefix() / "bin/demo", "#!/bin/sh\necho changed\n", 0755);
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    EXPECT_EQ(p.result.verdict, Verdict::MissingSig);
    EXPECT_NE(p.result.reason.find("no archive"), std::string::npos) << p.result.reason;
    EXPECT_FALSE(p.files_authenticated);
    ASSERT_EQ(p.files.size(), 1u) << findings(p);
    EXPECT_EQ(p.files[0].path, "bin/demo");
}

TEST_F(AuditEnv, A24_sig_gone_is_missing_sig) {
    stdfs::remove(env.pkgs() / (demo.fn() + ".sig"));
    const PackageAudit& p = package(audit(), "demo-1.0-0");
    EXPECT_EQ(p.result.verdict, Verdict::MissingSig);
    EXPECT_NE(p.result.reason.find(".sig"), std::string::npos) << p.result.reason;
}

TEST_F(AuditEnv, A24_tampered_archive_is_invalid) {
    const auto a = env.pkgs() / demo.fn();
    std::string d = read_file(a);
    d[d.size() / 2] ^= 1;
    write_file(a, d);
    EXPECT_EQ(package(audit(), "demo-1.0-0").result.verdict, Verdict::Invalid);
}

// --online: a channel with demo's archive, its index signed; the record
// points there and the archive is gone from the package directory.
class AuditOnline : public AuditEnv {
protected:
    void SetUp() override {
        AuditEnv::SetUp();
        move_to_signed_channel(env, demo, channel.path());
    }
    AuditReport online() {
        AuditOptions o;
        o.online = GateOptions{.index_cache = state.path() / "index-cache"};
        return audit(o);
    }
    TempDir channel;
};

TEST_F(AuditOnline, A24_tarball_gone_record_authenticated_by_the_signed_index) {
    EXPECT_EQ(package(audit(), "demo-1.0-0").result.verdict, Verdict::MissingSig);
    const PackageAudit p = package(online(), "demo-1.0-0");
    EXPECT_EQ(p.result.verdict, Verdict::Valid) << p.result.reason;
    EXPECT_NE(p.result.reason.find("signed index"), std::string::npos) << p.result.reason;
    EXPECT_FALSE(p.files_authenticated);
    EXPECT_TRUE(p.files.empty()) << findings(p);
}

TEST_F(AuditOnline, A24_tarball_gone_record_sha256_not_the_signed_index_is_invalid) {
    nlohmann::json rec = env.read_record(demo);
    rec["sha256"] = std::string(64, 'b');
    env.write_record(demo, rec);
    const PackageAudit p = package(online(), "demo-1.0-0");
    EXPECT_EQ(p.result.verdict, Verdict::Invalid) << p.result.reason;
}

TEST_F(AuditOnline, A1_unsigned_index_authenticates_nothing) {
    stdfs::remove(channel.path() / "linux-64" / "repodata.json.sig");
    // An index the policy allows unsigned (never seen signed): still MISSING_SIG.
    const PackageAudit p = package(online(), "demo-1.0-0");
    EXPECT_EQ(p.result.verdict, Verdict::MissingSig) << p.result.reason;
    EXPECT_NE(p.result.reason.find("not signed"), std::string::npos) << p.result.reason;
}

TEST_F(AuditEnv, A5_key_not_allowed_for_the_channel_is_untrusted) {
    AuditOptions o;
    o.trust_for = [](const std::string& channel) {
        EXPECT_EQ(channel, "https://conda.example.org/demo");
        return ChannelTrust{.allowed_keys = {"someone-else"}};
    };
    EXPECT_EQ(package(audit(o), "demo-1.0-0").result.verdict, Verdict::UntrustedKey);
}

TEST_F(AuditEnv, A21_revoked_key_is_bad_key) {
    AuditOptions o;
    o.revoked = [](const std::string&) { return std::optional<Revocation>(Revocation{.reason = "lost", .date = "2026-01-01"}); };
    EXPECT_EQ(package(audit(o), "demo-1.0-0").result.verdict, Verdict::BadKey);
}

TEST_F(AuditEnv, package_directory_named_through_a_link_is_searched) {
    const stdfs::path link = state.path() / "pkgs-link";
    stdfs::create_directory_symlink(env.pkgs(), link);
    AuditOptions o;
    o.pkgs_dirs = {link};
    const AuditReport r = audit_prefix(env.prefix(), o, Environment{.keys_dir = env.keys_dir(), .state_dir = state.path()});
    EXPECT_EQ(package(r, "demo-1.0-0").result.verdict, Verdict::Valid) << package(r, "demo-1.0-0").result.reason;
}

TEST_F(AuditEnv, unreadable_record_is_error) {
    write_file(env.prefix() / "conda-meta" / "broken-1-0.json", "{\"name\": ");
    const AuditReport r = audit();
    EXPECT_EQ(package(r, "broken-1-0").result.verdict, Verdict::Error);
}

TEST(AuditPlaceholder, text_and_binary_round_trip) {
    const std::string ph = long_placeholder();
    EXPECT_EQ(restore_placeholder("a=/opt/env b=/opt/env", "/opt/env", ph, false), "a=" + ph + " b=" + ph);
    std::string packaged = std::string("x\0", 2) + ph + "/lib" + std::string("\0y", 2);
    std::string installed = std::string("x\0", 2) + "/opt/env/lib" + std::string(1, '\0') +
                            std::string(ph.size() - 8, '\0') + "y";
    EXPECT_EQ(restore_placeholder(installed, "/opt/env", ph, true), packaged);
    installed.back() = '\0';
    installed[installed.size() - 2] = 'z';  // the padding is not all NULs
    EXPECT_EQ(restore_placeholder(installed, "/opt/env", ph, true), std::nullopt);
}

TEST(AuditUntracked, rules) {
    const std::set<std::string, std::less<>> owned{"lib/python3.12/site-packages/a.py", "x.py"};
    EXPECT_EQ(classify_untracked("conda-meta/history", owned), UntrackedRule::CondaMeta);
    EXPECT_EQ(classify_untracked("conda-meta/pinned", owned), UntrackedRule::CondaMeta);
    // Seen with real conda 26.7.1: written into every new environment.
    EXPECT_EQ(classify_untracked("conda-meta/created_at", owned), UntrackedRule::CondaMeta);
    EXPECT_EQ(classify_untracked("conda-meta/created_at.sh", owned), UntrackedRule::Reported);
    EXPECT_EQ(classify_untracked("conda-meta/zlib-1-0.json", owned), UntrackedRule::CondaMeta);
    EXPECT_EQ(classify_untracked("conda-meta/sub/x.json", owned), UntrackedRule::Reported);
    EXPECT_EQ(classify_untracked("lib/python3.12/site-packages/__pycache__/a.cpython-312.pyc", owned),
              UntrackedRule::OwnedPycache);
    EXPECT_EQ(classify_untracked("lib/python3.12/site-packages/__pycache__/a.cpython-312.opt-1.pyc", owned),
              UntrackedRule::OwnedPycache);
    EXPECT_EQ(classify_untracked("__pycache__/x.cpython-312.pyc", owned), UntrackedRule::OwnedPycache);
    EXPECT_EQ(classify_untracked("lib/python3.12/site-packages/__pycache__/b.cpython-312.pyc", owned),
              UntrackedRule::Reported);
    EXPECT_EQ(classify_untracked("lib/python3.12/site-packages/__pycache__/a.pyc", owned), UntrackedRule::Reported);
    EXPECT_EQ(classify_untracked("lib/python3.12/site-packages/x.pth", owned), UntrackedRule::AlwaysReported);
    EXPECT_EQ(classify_untracked("conda-meta/x.pth", owned), UntrackedRule::AlwaysReported);
    EXPECT_EQ(classify_untracked("lib/sitecustomize.py", owned), UntrackedRule::AlwaysReported);
    EXPECT_EQ(classify_untracked("usercustomize.py", owned), UntrackedRule::AlwaysReported);
    EXPECT_TRUE(walk_skips("pkgs", true, false));
    EXPECT_FALSE(walk_skips("pkgs", false, false));
    EXPECT_TRUE(walk_skips("envs/py", false, true));
    EXPECT_FALSE(walk_skips("envs/py", false, false));
    EXPECT_FALSE(walk_skips("lib/envs/py", false, true));
}

TEST(AuditRecord, refuses_unsafe_paths) {
    for (const char* bad : {"../etc/passwd", "/etc/passwd", "a//b", "a/./b", ""}) {
        const nlohmann::json doc{{"paths_version", 1},
                                 {"paths", {{{"_path", bad}, {"path_type", "hardlink"}}}}};
        EXPECT_THROW(parse_paths(doc), std::runtime_error) << bad;
    }
}

TEST(AuditRecord, real_records_parse) {
    const auto shared = shared_dir();
    if (!shared || !stdfs::is_directory(*shared / "fixtures/real/env_metadata")) GTEST_SKIP() << "no shared fixtures";
    std::size_t n = 0;
    for (const auto& e : stdfs::recursive_directory_iterator(*shared / "fixtures/real/env_metadata")) {
        if (e.path().extension() != ".json" || e.path().parent_path().filename() != "conda-meta") continue;
        const fs::OpenedFile f = fs::open_untrusted(e.path());
        const PrefixRecord r =
            parse_prefix_record(read_json(f.fd.get(), JsonLimits{.max_bytes = max_prefix_record_bytes}, e.path()));
        EXPECT_FALSE(r.fn.empty()) << e.path();
        EXPECT_TRUE(r.paths.has_value()) << e.path();
        ++n;
    }
    EXPECT_GT(n, 20u);
}

}  // namespace
}  // namespace condaguard::test
