// conda-guard audit as users run it: the exact text, JSON with its version,
// exit codes, -n NAME through envs_dirs, nothing but the report in a pipe.

#include "../support/prefix.hpp"
#include "../support/signed_channel.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

class GuardAudit : public ::testing::Test {
protected:
    void SetUp() override {
        env_.install(demo_);
        stdfs::create_directories(home_.path());
    }
    RunResult audit(std::vector<std::string> args, std::vector<std::string> extra_env = {}) {
        args.insert(args.begin(), {"audit", "--pkgs-dir", env_.pkgs().string()});
        std::vector<std::string> e{"CONDA_KEYS_DIR=" + env_.keys_dir().string(),
                                   "CONDA_GUARD_STATE_DIR=" + (home_.path() / "state").string(),
                                   "CONDARC=", "CONDA_PKGS_DIRS=", "CONDA_ENVS_DIRS=", "CONDA_ENVS_PATH=",
                                   "CONDA_ROOT=", "CONDA_EXE=", "CONDA_PREFIX=", "XDG_CONFIG_HOME="};
        e.insert(e.end(), extra_env.begin(), extra_env.end());
        return run_isolated(conda_guard_exe(), std::move(args), home_.path(), e);
    }
    // The output with the temporary directory and the key's fingerprint made stable.
    std::string stable(std::string s) const {
        for (const std::string& from : {env_.pkgs().parent_path().string()})
            for (std::size_t i; (i = s.find(from)) != std::string::npos;) s.replace(i, from.size(), "T");
        const auto open = s.find("tester (");
        if (open != std::string::npos) s.replace(open + 8, 16, "FP");
        return s;
    }
    TempDir home_;
    TestEnv env_;
    EnvPackage demo_ = typical_package("demo");
};

TEST_F(GuardAudit, clean_environment_exits_0) {
    const RunResult r = audit({"-p", env_.prefix().string()});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(stable(r.out),
              "conda-meta/demo-1.0-0.json  VALID          signed by key tester (FP); the record matches the signed archive "
              "T/pkgs/demo-1.0-0.conda\n"
              "1 package: 1 authenticated, 0 not; 6 files checked, 0 with findings; 0 untracked\n");
    EXPECT_EQ(r.err, "");  // no progress line in a pipe
}

TEST_F(GuardAudit, A23_findings_text_exits_1) {
    write_file(env_.prefix() / "etc/demo.conf", "prefix=/elsewhere\n");
    ASSERT_EQ(::chmod((env_.prefix() / "bin/demo").c_str(), 0644), 0);
    stdfs::remove(env_.prefix() / "share/demo/data.txt");
    write_file(env_.prefix() / "lib/evil.pth", "import os\n");
    const RunResult r = audit({"-p", env_.prefix().string()});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(stable(r.out),
              "conda-meta/demo-1.0-0.json  VALID          signed by key tester (FP); the record matches the signed archive "
              "T/pkgs/demo-1.0-0.conda\n"
              "  ..M..      bin/demo  mode 0644, the package has 0755\n"
              "  .5...      etc/demo.conf  content differs from the signed package's, with the prefix placeholder put back\n"
              "  missing    share/demo/data.txt  missing\n"
              "  untracked  lib/evil.pth  a regular file that no package owns: Python runs it at start-up\n"
              "1 package: 1 authenticated, 0 not; 6 files checked, 3 with findings; 1 untracked\n");
}

TEST_F(GuardAudit, A24_json_has_version_and_verdicts) {
    stdfs::remove(env_.pkgs() / (demo_.fn() + ".sig"));
    const RunResult r = audit({"-p", env_.prefix().string(), "--json"});
    EXPECT_EQ(r.status, 1) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["command"], "audit");
    EXPECT_EQ(j["status"], "fail");
    ASSERT_EQ(j["packages"].size(), 1u);
    EXPECT_EQ(j["packages"][0]["verdict"], "MISSING_SIG");
    EXPECT_EQ(j["packages"][0]["files_authenticated"], false);
    EXPECT_EQ(j["summary"]["files_checked"], 6);
}

TEST_F(GuardAudit, json_flags_are_words) {
    write_file(env_.prefix() / "lib/libdemo.so.1", "x");
    const RunResult r = audit({"-p", env_.prefix().string(), "--json"});
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["packages"][0]["files"].size(), 1u);
    EXPECT_EQ(j["packages"][0]["files"][0]["flags"], (nlohmann::json{"size", "digest"}));
}

TEST_F(GuardAudit, A24_online_checks_a_record_whose_archive_is_gone_against_the_signed_index) {
    TempDir channel;
    move_to_signed_channel(env_, demo_, channel.path());
    const RunResult offline = audit({"-p", env_.prefix().string()});
    EXPECT_EQ(offline.status, 1);
    EXPECT_NE(offline.out.find("MISSING_SIG"), std::string::npos) << offline.out;
    const RunResult online = audit({"-p", env_.prefix().string(), "--online"});
    EXPECT_EQ(online.status, 0) << online.out << online.err;
    EXPECT_NE(online.out.find("VALID          its sha256 is the signed index's"), std::string::npos) << online.out;
}

TEST_F(GuardAudit, name_is_found_in_envs_dirs) {
    const RunResult r = audit({"-n", "env"}, {"CONDA_ENVS_DIRS=/nonexistent:" + env_.prefix().parent_path().string()});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    const RunResult missing = audit({"-n", "nope"}, {"CONDA_ENVS_DIRS=" + env_.prefix().parent_path().string(),
                                                     "CONDA_EXE=", "CONDA_ROOT="});
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.err.find("no environment 'nope'"), std::string::npos) << missing.err;
    // Without CONDA_EXE or CONDA_ROOT, conda's root envs/ is not searched: say so.
    EXPECT_NE(missing.err.find("root prefix is unknown (set CONDA_EXE or CONDA_ROOT, or give -p PREFIX)"),
              std::string::npos)
        << missing.err;
    const RunResult rooted = audit({"-n", "nope"}, {"CONDA_ENVS_DIRS=" + env_.prefix().parent_path().string(),
                                                    "CONDA_ROOT=" + env_.prefix().parent_path().string()});
    EXPECT_EQ(rooted.err.find("root prefix is unknown"), std::string::npos) << rooted.err;
}

TEST_F(GuardAudit, active_environment_by_default) {
    const RunResult r = audit({}, {"CONDA_PREFIX=" + env_.prefix().string()});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("demo-1.0-0.json"), std::string::npos);
}

TEST_F(GuardAudit, usage_errors_exit_2) {
    EXPECT_EQ(audit({}).status, 2);
    EXPECT_EQ(audit({"-p", env_.prefix().string(), "-n", "env"}).status, 2);
    const RunResult r = audit({"-p", (home_.path() / "not-an-env").string()});
    EXPECT_EQ(r.status, 2);
}

TEST_F(GuardAudit, unreadable_record_exits_2) {
    write_file(env_.prefix() / "conda-meta/bad-1-0.json", "[");
    const RunResult r = audit({"-p", env_.prefix().string()});
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("conda-meta/bad-1-0.json     ERROR          parse error"), std::string::npos) << r.out;
}

}  // namespace
