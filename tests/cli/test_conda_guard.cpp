// conda-guard as users run it: index, verify-channel, verify, keys, state.
#include <condaguard/trust/keys.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

using namespace condaguard;
using namespace condaguard::test;
using json = nlohmann::json;

namespace {

class CondaGuard : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(run_isolated(conda_sign_exe(), {"--keys-dir", keys().string(), "--keygen", "chan"}, t_.path()).status,
                  0);
        build_package(ch() / "noarch", PackageSpec{.name = "alpha"});
        build_package(ch() / "linux-64", PackageSpec{.name = "gamma", .subdir = "linux-64", .format = PackageFormat::TarBz2});
    }
    RunResult g(std::vector<std::string> args) {
        return run_isolated(conda_guard_exe(), std::move(args), t_.path(),
                            {"CONDA_KEYS_DIR=" + keys().string(), "CONDA_GUARD_STATE_DIR=" + (t_ / "state").string()});
    }
    RunResult sign_channel(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"index", ch().string(), "--sign", "chan", "--channel-id", "demo", "--sign-packages"};
        args.insert(args.end(), extra.begin(), extra.end());
        return g(args);
    }
    stdfs::path keys() const { return t_ / "keys"; }
    stdfs::path ch() const { return t_ / "channel"; }
    TempDir t_;
};

}  // namespace

TEST_F(CondaGuard, IndexPrintsOneLinePerSubdir) {
    RunResult r = g({"index", ch().string()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find((ch() / "noarch" / "repodata.json").string() + ": 1 package (1 read, 0 unchanged)"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find((ch() / "linux-64" / "repodata.json").string() + ": 1 package ("), std::string::npos);
    r = g({"index", ch().string()});
    EXPECT_NE(r.out.find("1 package (0 read, 1 unchanged)"), std::string::npos) << r.out;
    RunResult j = g({"index", ch().string(), "--json"});
    ASSERT_EQ(j.status, 0);
    json doc = json::parse(j.out);
    EXPECT_EQ(doc["version"], 1);
    EXPECT_EQ(doc["status"], "ok");
    ASSERT_EQ(doc["subdirs"].size(), 2u);
    EXPECT_EQ(doc["subdirs"][1]["subdir"], "noarch");
    EXPECT_EQ(doc["subdirs"][1]["packages"], 1);
    EXPECT_EQ(doc["subdirs"][1]["reused"], 1);
}

TEST_F(CondaGuard, IndexReportsBadPackagesAndExitsOne) {
    write_file(ch() / "noarch" / "broken-1.0-0.tar.bz2", "BZh9 not really");
    RunResult r = g({"index", ch().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("conda-guard: noarch/broken-1.0-0.tar.bz2: left out of the index: corrupt archive"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(json::parse(read_file(ch() / "noarch" / "repodata.json"))["packages"].contains("broken-1.0-0.tar.bz2"));
}

TEST_F(CondaGuard, IndexSigningOptionsAreChecked) {
    EXPECT_EQ(g({"index", ch().string(), "--sign", "chan"}).status, 2) << "--sign needs --channel-id";
    EXPECT_EQ(g({"index", ch().string(), "--channel-id", "x"}).status, 2) << "--channel-id needs --sign";
    EXPECT_EQ(g({"index", ch().string(), "--sign-packages"}).status, 2);
    for (const char* bad : {"30", "0d", "-1d", "5w", "1.5h", "d"}) {
        RunResult r = g({"index", ch().string(), "--sign", "chan", "--channel-id", "x", "--expires", bad});
        EXPECT_EQ(r.status, 2) << bad;
        EXPECT_NE(r.err.find("expected a duration like 30d"), std::string::npos) << r.err;
    }
    RunResult missing = g({"index", ch().string(), "--sign", "nobody", "--channel-id", "x"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("MISSING_KEY"), std::string::npos) << missing.err;
    EXPECT_FALSE(stdfs::exists(ch() / "noarch" / "repodata.json")) << "nothing written";
}

TEST_F(CondaGuard, SignedChannelVerifiesAndTamperingFails) {
    RunResult s = sign_channel();
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_NE(s.out.find("signed version 1 for channel 'demo' by key chan"), std::string::npos) << s.out;
    EXPECT_NE(s.out.find("signed: noarch/alpha-1.0-0.conda"), std::string::npos);
    RunResult ok = g({"verify-channel", ch().string(), "--channel-id", "demo"});
    EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
    // Per subdir: a summary line, the index's line, the packages' lines.
    EXPECT_EQ(std::count(ok.out.begin(), ok.out.end(), '\n'), 6) << ok.out;
    EXPECT_EQ(ok.out.rfind("linux-64: index VALID; 1 package, all VALID\n", 0), 0u) << ok.out;
    EXPECT_NE(ok.out.find("\nnoarch: index VALID; 1 package, all VALID\n"), std::string::npos) << ok.out;

    std::string bytes = read_file(ch() / "noarch" / "repodata.json");
    bytes[bytes.find("alpha") + 1] = 'L';
    write_file(ch() / "noarch" / "repodata.json", bytes);
    RunResult bad = g({"verify-channel", ch().string(), "--json"});
    EXPECT_EQ(bad.status, 1);
    json j = json::parse(bad.out);
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["status"], "fail");
    bool found = false;
    for (const auto& r : j["results"])
        if (r["path"].get<std::string>().ends_with("noarch/repodata.json")) {
            EXPECT_EQ(r["verdict"], "INVALID");
            found = true;
        }
    EXPECT_TRUE(found);
    // The same findings per subdir: the index's, then its packages' (none: the index failed).
    ASSERT_EQ(j["subdirs"].size(), 2u);
    EXPECT_EQ(j["subdirs"][0]["subdir"], "linux-64");
    EXPECT_EQ(j["subdirs"][0]["status"], "ok");
    EXPECT_EQ(j["subdirs"][0]["index"]["verdict"], "VALID");
    ASSERT_EQ(j["subdirs"][0]["packages"].size(), 1u);
    EXPECT_EQ(j["subdirs"][1]["subdir"], "noarch");
    EXPECT_EQ(j["subdirs"][1]["status"], "fail");
    EXPECT_EQ(j["subdirs"][1]["index"]["verdict"], "INVALID");
    EXPECT_TRUE(j["subdirs"][1]["packages"].empty());
    RunResult text = g({"verify-channel", ch().string()});
    EXPECT_NE(text.out.find("\nnoarch: index INVALID; packages not checked\n"), std::string::npos) << text.out;
}

TEST_F(CondaGuard, ExpiredIndexAndAllowExpired) {
    ASSERT_EQ(sign_channel({"--expires", "1s"}).status, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // bounded: past a one-second lifetime
    RunResult r = g({"verify-channel", ch().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("EXPIRED"), std::string::npos) << r.out;
    RunResult allowed = g({"verify-channel", ch().string(), "--allow-expired"});
    EXPECT_EQ(allowed.status, 0) << allowed.out;
    EXPECT_NE(allowed.err.find("warning: --allow-expired"), std::string::npos);
}

TEST_F(CondaGuard, RollbackThenStateReset) {
    ASSERT_EQ(sign_channel().status, 0);
    const std::string v1 = read_file(ch() / "noarch" / "repodata.json");
    const std::string v1sig = read_file(ch() / "noarch" / "repodata.json.sig");
    ASSERT_EQ(sign_channel().status, 0);
    ASSERT_EQ(g({"verify-channel", ch().string()}).status, 0);
    write_file(ch() / "noarch" / "repodata.json", v1);
    write_file(ch() / "noarch" / "repodata.json.sig", v1sig);
    RunResult r = g({"verify-channel", ch().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("ROLLBACK"), std::string::npos) << r.out;
    RunResult show = g({"state", "show"});
    EXPECT_NE(show.out.find("demo noarch version 2"), std::string::npos) << show.out;
    EXPECT_EQ(g({"state", "reset", "demo"}).status, 0);
    EXPECT_EQ(g({"verify-channel", ch().string()}).status, 0);
    EXPECT_EQ(g({"state", "reset", "never-seen"}).status, 2);
}

TEST_F(CondaGuard, UntrustedKey) {
    ASSERT_EQ(sign_channel().status, 0);
    RunResult r = g({"verify-channel", ch().string(), "--key", "release"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("UNTRUSTED_KEY"), std::string::npos) << r.out;
    EXPECT_EQ(g({"verify-channel", ch().string(), "--key", "chan"}).status, 0);
}

TEST_F(CondaGuard, VerifyFilesOffline) {
    ASSERT_EQ(sign_channel().status, 0);
    const auto alpha = (ch() / "noarch" / "alpha-1.0-0.conda").string();
    RunResult r = g({"verify", alpha});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("VALID"), std::string::npos);
    stdfs::remove(alpha + ".sig");
    EXPECT_EQ(g({"verify", alpha}).status, 1);
}

TEST_F(CondaGuard, KeysListShowRemove) {
    RunResult list = g({"keys", "list"});
    ASSERT_EQ(list.status, 0) << list.err;
    const std::string fp = PublicKey::from_pem(read_file(keys() / "chan.pub"), "p", {}).fingerprint();
    EXPECT_NE(list.out.find("chan"), std::string::npos);
    EXPECT_EQ(list.out.find(fp), std::string::npos) << "text shows the short form\n" << list.out;
    EXPECT_NE(list.out.find(fp.substr(0, 16)), std::string::npos) << list.out;
    EXPECT_NE(g({"keys", "list", "-v"}).out.find(fp), std::string::npos) << "-v shows it in full";
    write_file(keys() / "junk.pub", "nonsense\n");
    RunResult list2 = g({"keys", "list", "--json"});
    json j = json::parse(list2.out);
    ASSERT_EQ(j["keys"].size(), 2u);
    EXPECT_EQ(j["keys"][0]["name"], "chan");
    EXPECT_EQ(j["keys"][0]["fingerprint"], fp);
    EXPECT_EQ(j["keys"][1]["status"], "BAD_KEY");
    RunResult show = g({"keys", "show", "chan"});
    EXPECT_EQ(show.status, 0);
    EXPECT_NE(show.out.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
    EXPECT_EQ(g({"keys", "show", "absent"}).status, 1);
    EXPECT_EQ(g({"keys", "remove", "junk"}).status, 0);
    EXPECT_FALSE(stdfs::exists(keys() / "junk.pub"));
    EXPECT_EQ(g({"keys", "remove", "chan"}).status, 0);
    EXPECT_TRUE(stdfs::exists(keys() / "chan")) << "the private key stays without --private";
    EXPECT_EQ(g({"keys", "remove", "../x"}).status, 2);
}

TEST_F(CondaGuard, ManPageDocumentsEveryOption) {
    const char* src = std::getenv("CONDAGUARD_SOURCE_DIR");
    ASSERT_NE(src, nullptr);
    std::string man = read_file(stdfs::path(src) / "man" / "conda-guard.1");
    std::erase(man, '\\');
    for (const std::vector<std::string>& cmd :
         std::vector<std::vector<std::string>>{{"index", "--help"}, {"verify-channel", "--help"}, {"verify", "--help"},
                                               {"keys", "--help"}, {"state", "--help"}, {"--help"}}) {
        RunResult help = g(cmd);
        EXPECT_EQ(help.status, 0);
        std::size_t pos = 0;
        while ((pos = help.out.find("--", pos)) != std::string::npos) {
            std::size_t end = help.out.find_first_of(" ,:=)\n", pos);
            const std::string flag = help.out.substr(pos, end - pos);
            pos = end;
            if (flag == "--help" || flag == "--") continue;
            EXPECT_NE(man.find(flag), std::string::npos) << flag << " (" << cmd[0] << ") is not in man/conda-guard.1";
        }
    }
    for (const char* word : {"EXIT STATUS", "VERIFICATION POLICY", "EXAMPLES", "info.guard", "ROLLBACK", "EXPIRED"})
        EXPECT_NE(man.find(word), std::string::npos) << word;
}
