// conda-guard fetch as users run it: output, JSON, exit codes, explicit
// files, and crash safety (SIGKILL at many points of a run, then a run that
// must succeed, the package directory holding only complete entries).
#include <condaguard/channel/publish.hpp>
#include <condaguard/trust/digest.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

using namespace condaguard;
using namespace condaguard::test;
using json = nlohmann::json;

namespace {

class GuardFetch : public ::testing::Test {
protected:
    void SetUp() override {
        alpha_ = build_package(ch() / "noarch", PackageSpec{.name = "alpha"});
        beta_ = build_package(ch() / "noarch", PackageSpec{.name = "beta", .format = PackageFormat::TarBz2});
        sign_channel();
        stdfs::create_directories(t_ / "home");
    }
    // Indexes and signs the channel (and every package without a .sig) with the key "chan".
    void sign_channel() {
        index_channel(ch(), IndexOptions{.jobs = 1,
                                         .signing = IndexSigning{.key_name = KeyName("chan"),
                                                                 .key = &keys_.add("chan"),
                                                                 .channel_id = "example",
                                                                 .sign_packages = true,
                                                                 .signed_at = system_now()}});
    }
    stdfs::path ch() const { return t_ / "channel"; }
    stdfs::path pkgs() const { return t_ / "pkgs"; }
    std::vector<std::string> env() const {
        return {"CONDA_KEYS_DIR=" + keys_.keys().string(), "CONDA_GUARD_STATE_DIR=" + (t_ / "state").string(),
                "CONDARC=", "CONDA_PKGS_DIRS=", "CONDA_ROOT=", "CONDA_EXE=", "CONDA_PREFIX=", "XDG_CONFIG_HOME="};
    }
    RunResult g(std::vector<std::string> args) {
        args.insert(args.begin(), {"fetch", "--pkgs-dir", pkgs().string()});
        return run_isolated(conda_guard_exe(), std::move(args), t_ / "home", env());
    }
    static std::string url(const stdfs::path& p) { return "file://" + p.string(); }

    TempDir t_;
    Keys keys_;
    stdfs::path alpha_, beta_;
};

TEST_F(GuardFetch, PlacesVerifiedPackagesOneLineEach) {
    const RunResult r = g({url(alpha_), url(beta_)});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find(url(alpha_) + "   VALID"), std::string::npos) << r.out;  // columns sized from the data
    EXPECT_NE(r.out.find("2 of 2 packages verified and placed"), std::string::npos) << r.out;
    EXPECT_TRUE(stdfs::exists(pkgs() / "alpha-1.0-0" / "info" / "repodata_record.json"));
    EXPECT_TRUE(stdfs::exists(pkgs() / "beta-1.0-0.tar.bz2.sig"));
    EXPECT_EQ(r.err, "") << "no progress display in a pipe";
}

TEST_F(GuardFetch, A14_removed_claimant_is_reported_one_line_each) {
    write_file(pkgs() / "urls.txt", "");
    write_file(pkgs() / ".tmp-x" / "info" / "index.json", R"({"name":"alpha","version":"1.0","build":"0"})");
    const RunResult r = g({url(alpha_)});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("\ncleaned " + (pkgs() / ".tmp-x").string() + " (claimed alpha-1.0-0)\n"), std::string::npos)
        << r.out;
    EXPECT_FALSE(stdfs::exists(pkgs() / ".tmp-x"));
    const RunResult j = g({"--json", url(alpha_)});
    ASSERT_EQ(j.status, 0) << j.out << j.err;
    EXPECT_EQ(nlohmann::json::parse(j.out)["packages"][0]["cleaned"], nlohmann::json::array()) << j.out;
}

TEST_F(GuardFetch, ProgressOnATerminalOnly) {
    // script(1) (bsdutils, essential in Debian) gives the command a terminal.
    const std::string cmd = conda_guard_exe() + " fetch --pkgs-dir " + pkgs().string() + " " + url(alpha_);
    std::vector<std::string> e = env();
    e.push_back("HOME=" + (t_ / "home").string());
    const RunResult r = run({"/usr/bin/script", "-qec", cmd, "/dev/null"}, e);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("of 1 packages"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("MB/s"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\r\033[K"), std::string::npos) << "the line is cleared when done";
    // In a pipe: nothing of it (PlacesVerifiedPackagesOneLineEach checks stderr is empty).
}

TEST_F(GuardFetch, JsonAndARefusal) {
    stdfs::remove(beta_.string() + ".sig");
    const RunResult r = g({"--json", url(alpha_), url(beta_)});
    EXPECT_EQ(r.status, 1) << r.err;
    const json doc = json::parse(r.out);
    EXPECT_EQ(doc["version"], 1);
    EXPECT_EQ(doc["command"], "fetch");
    EXPECT_EQ(doc["status"], "fail");
    EXPECT_EQ(doc["packages"][0]["verdict"], "VALID");
    EXPECT_EQ(doc["packages"][1]["verdict"], "MISSING_SIG");
    EXPECT_EQ(doc["indexes"][0]["verdict"], "VALID");
    ASSERT_EQ(doc["placed"].size(), 1u);
    EXPECT_FALSE(stdfs::exists(pkgs() / "beta-1.0-0"));
    EXPECT_FALSE(stdfs::exists(pkgs() / beta_.filename()));
}

TEST_F(GuardFetch, A1_signatures_none_shows_each_UNVERIFIED_package_and_exits_0) {
    for (const auto& e : stdfs::directory_iterator(ch() / "noarch"))
        if (e.path().extension() == ".sig") stdfs::remove(e.path());
    const stdfs::path policy = t_ / "policy.yaml";
    // Without a rule, an unsigned channel is refused as ever (A1: local policy decides).
    RunResult r = g({url(alpha_)});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("MISSING_SIG"), std::string::npos) << r.out;
    write_file(policy, "channels:\n  - match: " + url(ch()) + "\n    signatures: none\n", 0600);
    r = g({"--policy", policy.string(), url(alpha_), url(beta_)});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    for (const auto& p : {alpha_, beta_}) {
        // Its own line: URL, the word, the reason naming the rule.
        const auto at = r.out.find(url(p) + " ");
        ASSERT_NE(at, std::string::npos) << r.out;
        const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
        std::istringstream words(line);
        std::string first, word;
        words >> first >> word;
        EXPECT_EQ(word, "UNVERIFIED") << line;
        EXPECT_NE(line.find("  not authenticated: the policy's rule for '" + url(ch()) + "' (" + policy.string() +
                            ":3:17)"),
                  std::string::npos)
            << line;
    }
    EXPECT_NE(r.out.find("0 of 2 packages verified and placed; 2 UNVERIFIED placed, as the policy allows unsigned\n"),
              std::string::npos)
        << r.out;
    EXPECT_TRUE(stdfs::exists(pkgs() / "alpha-1.0-0" / "info" / "repodata_record.json"));
    r = g({"--policy", policy.string(), "--json", url(alpha_)});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const json doc = json::parse(r.out);
    EXPECT_EQ(doc["status"], "ok");
    EXPECT_EQ(doc["indexes"][0]["verdict"], "UNVERIFIED");
    EXPECT_EQ(doc["packages"][0]["verdict"], "UNVERIFIED");
    EXPECT_EQ(doc["placed"].size(), 1u);
}

TEST_F(GuardFetch, A15_explicit_file) {
    const std::string sha = to_hex(sha256_bytes(read_file(alpha_)));
    write_file(t_ / "env.txt", "# platform: noarch\n@EXPLICIT\n" + url(alpha_) + "#" + sha + "\n" + url(beta_) + "\n");
    RunResult r = g({"--file", (t_ / "env.txt").string()});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    write_file(t_ / "bad.txt", "@EXPLICIT\n" + url(alpha_) + "#" + std::string(64, '0') + "\n");
    r = g({"--file", (t_ / "bad.txt").string()});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("#sha256"), std::string::npos) << r.out;
}

TEST_F(GuardFetch, UsageErrors) {
    EXPECT_EQ(g({}).status, 2);
    write_file(t_ / "env.txt", "@EXPLICIT\n");
    EXPECT_EQ(g({url(alpha_), "--file", (t_ / "env.txt").string()}).status, 2);
    const RunResult r = g({"not-a-package"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("not-a-package"), std::string::npos) << r.err;
    write_file(t_ / "policy.yaml", "parallel: many\n", 0600);
    const RunResult p = g({"--policy", (t_ / "policy.yaml").string(), url(alpha_)});
    EXPECT_EQ(p.status, 2);
    EXPECT_NE(p.err.find("policy.yaml:1:"), std::string::npos) << p.err;
}

TEST_F(GuardFetch, A5_policy_allows_only_another_key) {
    write_file(t_ / "policy.yaml", "channels:\n  - match: " + url(ch()) + "\n    keys: [other]\n", 0600);
    const RunResult r = g({"--policy", (t_ / "policy.yaml").string(), url(alpha_)});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.out.find("UNTRUSTED_KEY"), std::string::npos) << r.out;
    EXPECT_FALSE(stdfs::exists(pkgs() / "alpha-1.0-0"));
}

TEST_F(GuardFetch, A21_revoked_key_in_policy) {
    const std::string fp = keys_.add("chan").public_key().fingerprint();
    write_file(t_ / "policy.yaml",
               "revoked_keys:\n  - fingerprint: " + fp + "\n    reason: leaked\n    date: 2026-11-01\n", 0600);
    const RunResult r = g({"--policy", (t_ / "policy.yaml").string(), url(alpha_)});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.out.find("BAD_KEY"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("revoked"), std::string::npos) << r.out;
}

TEST_F(GuardFetch, A26_ssl_verify_false_warns_on_every_run) {
    write_file(t_ / "condarc.yml", "ssl_verify: false\n");
    auto e = env();
    e.push_back("CONDARC=" + (t_ / "condarc.yml").string());
    for (int i = 0; i < 2; ++i) {
        const RunResult r = run_isolated(conda_guard_exe(), {"fetch", "--pkgs-dir", pkgs().string(), url(alpha_)},
                                         t_ / "home", e);
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_NE(r.err.find("warning: ssl_verify is false"), std::string::npos) << r.err;
    }
}

TEST_F(GuardFetch, A19_unusable_package_directory_stops_the_run) {
    write_file(pkgs(), "not a directory");
    const RunResult r = g({url(alpha_)});
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.err.find(pkgs().string()), std::string::npos) << r.err;
}

TEST_F(GuardFetch, A26_credentials_redacted_in_output) {
    auto e = env();
    e.push_back("CONDA_REMOTE_MAX_RETRIES=0");
    const RunResult r = run_isolated(conda_guard_exe(),
                                     {"fetch", "--pkgs-dir", pkgs().string(), "--json",
                                      "https://alice:hunter2@127.0.0.1:9/t/tok-123/chan/noarch/x-1-0.conda"},
                                     t_ / "home", e);
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("tok-123"), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

// Every entry the package directory holds is complete and verified: each
// extracted folder sits beside its archive and .sig, the archive's bytes are
// the channel's, and the folder has its repodata_record.json.
void expect_only_complete_entries(const stdfs::path& pkgs, const stdfs::path& channel) {
    if (!stdfs::exists(pkgs)) return;
    for (const auto& e : stdfs::directory_iterator(pkgs)) {
        const std::string name = e.path().filename().string();
        if (name == ".condaguard" || name == "urls.txt") continue;
        if (e.is_directory()) {
            const stdfs::path fn_conda = pkgs / (name + ".conda"), fn_bz2 = pkgs / (name + ".tar.bz2");
            const stdfs::path archive = stdfs::exists(fn_conda) ? fn_conda : fn_bz2;
            EXPECT_TRUE(stdfs::exists(archive)) << "folder without its archive: " << name;
            EXPECT_TRUE(stdfs::exists(archive.string() + ".sig")) << "folder without its .sig: " << name;
            EXPECT_TRUE(stdfs::exists(e.path() / "info" / "repodata_record.json")) << "half folder: " << name;
        } else if (name.ends_with(".conda") || name.ends_with(".tar.bz2")) {
            EXPECT_EQ(read_file(e.path()), read_file(channel / "noarch" / name)) << "archive not verified: " << name;
        } else if (name.ends_with(".sig")) {
            EXPECT_EQ(read_file(e.path()), read_file(channel / "noarch" / name)) << name;
        } else {
            ADD_FAILURE() << "unexpected entry " << name;
        }
    }
}

TEST_F(GuardFetch, A14_sigkill_at_many_points_then_a_clean_run) {
    Deadline d(240);
    // A package large enough that the run spends time in every phase.
    build_package(ch() / "noarch", PackageSpec{.name = "big", .files = {{"lib/blob", Noise().bytes(24 << 20)}}});
    sign_channel();
    std::vector<std::string> argv{conda_guard_exe(), "fetch", "--pkgs-dir", pkgs().string(), url(alpha_), url(beta_),
                                  url(ch() / "noarch" / "big-1.0-0.conda")};
    std::vector<std::string> envs{"HOME=" + (t_ / "home").string()};
    for (const auto& e : env()) envs.push_back(e);
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string kv(*e);
        if (!kv.starts_with("HOME=") && !kv.starts_with("CONDA")) envs.push_back(kv);
    }
    auto cstrings = [](std::vector<std::string>& v) {
        std::vector<char*> out;
        for (auto& s : v) out.push_back(s.data());
        out.push_back(nullptr);
        return out;
    };
    auto args = cstrings(argv);
    auto envp = cstrings(envs);
    posix_spawn_file_actions_t quiet;
    ::posix_spawn_file_actions_init(&quiet);
    ::posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    ::posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
    int killed = 0;
    for (int delay_ms = 0; delay_ms <= 600; delay_ms += 15) {
        pid_t pid = -1;
        ASSERT_EQ(::posix_spawn(&pid, argv[0].c_str(), &quiet, nullptr, args.data(), envp.data()), 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status)) ++killed;
        expect_only_complete_entries(pkgs(), ch());
    }
    ::posix_spawn_file_actions_destroy(&quiet);
    EXPECT_GT(killed, 5) << "the runs finished before they could be killed";
    const RunResult r = g({url(alpha_), url(beta_), url(ch() / "noarch" / "big-1.0-0.conda")});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    expect_only_complete_entries(pkgs(), ch());
    EXPECT_TRUE(stdfs::is_empty(pkgs() / ".condaguard" / "staging")) << "staging left behind";
}

}  // namespace
