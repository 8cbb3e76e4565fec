// conda-guard as users run it: index, verify-channel, verify, keys, state.
#include <condaguard/channel/publish.hpp>
#include <condaguard/trust/keys.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>

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
    // The clock is set, not waited for: the channel is signed through the
    // library as of a day in the past, for one hour.
    const PrivateKey key = KeyStore(keys()).load_private(KeyName("chan"));
    index_channel(ch(), IndexOptions{.signing = IndexSigning{.key_name = KeyName("chan"),
                                                             .key = &key,
                                                             .channel_id = "demo",
                                                             .lifetime = std::chrono::hours(1),
                                                             .sign_packages = true,
                                                             .signed_at = system_now() - std::chrono::days(1)}});
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
    EXPECT_EQ(list2.status, 1) << "a BAD_KEY line exits 1, as the man page says";
    json j = json::parse(list2.out);
    EXPECT_EQ(j["status"], "fail");
    ASSERT_EQ(j["keys"].size(), 2u);
    EXPECT_EQ(j["keys"][0]["name"], "chan");
    EXPECT_EQ(j["keys"][0]["fingerprint"], fp);
    EXPECT_EQ(j["keys"][1]["status"], "BAD_KEY");
    RunResult show = g({"keys", "show", "chan"});
    EXPECT_EQ(show.status, 0);
    EXPECT_NE(show.out.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
    EXPECT_EQ(g({"keys", "show", "absent"}).status, 1);
    RunResult bad = g({"keys", "show", "junk"});
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.out.find("status:      BAD_KEY"), std::string::npos) << bad.out;
    EXPECT_EQ(g({"keys", "list"}).status, 1);
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

// A12: index's caps on reading uploads are options; each takes one value and
// a package over one is left out with a reason naming the option.
TEST_F(CondaGuard, A12_index_scan_limits_are_options) {
    for (auto [opt, why] : {std::pair{"--max-members", "has more than 3 members (raise with --max-members)"},
                            {"--max-unpacked-bytes", "unpacks to more than 3 bytes (raise with --max-unpacked-bytes)"},
                            {"--max-info-bytes",
                             "info-alpha-1.0-0.tar.zst: member 'info/paths.json' is larger than 3 bytes (raise with "
                             "--max-info-bytes)"}}) {
        RunResult r = g({"index", opt, "3", ch().string()});
        EXPECT_EQ(r.status, 1) << opt << ": " << r.err;
        EXPECT_NE(r.err.find(std::string("noarch/alpha-1.0-0.conda: left out of the index: corrupt archive: ") + why),
                  std::string::npos)
            << r.err;
    }
    build_package(ch() / "noarch", PackageSpec{.name = "zeros", .files = {{"share/zeros", std::string(2 << 20, '\0')}}});
    RunResult r = g({"index", "--max-ratio", "2", ch().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("zeros-1.0-0.conda: left out of the index: corrupt archive: unpacks to more than 2 times its "
                         "size (raise with --max-ratio)"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(g({"index", "--max-ratio", "100000", ch().string()}).status, 0);
    for (const char* bad : {"0", "-1", "1x", "99999999999999999999999"})
        EXPECT_EQ(g({"index", "--max-members", bad, ch().string()}).status, 2) << bad;
    EXPECT_EQ(g({"index", "--max-members", "1", "2", ch().string()}).status, 2) << "one value per occurrence";
}

// keys remove NAME --private removes whichever of NAME.pub and NAME exist;
// plain remove of a stranded private key says how to remove it.
TEST_F(CondaGuard, KeysRemoveNeverStrandsThePrivateKey) {
    ASSERT_EQ(g({"keys", "remove", "chan"}).status, 0);
    ASSERT_TRUE(stdfs::exists(keys() / "chan"));
    RunResult again = g({"keys", "remove", "chan"});
    EXPECT_EQ(again.status, 2);
    EXPECT_NE(again.err.find("only the private key " + (keys() / "chan").string() +
                             " does; remove it with 'conda-guard keys remove chan --private'"),
              std::string::npos)
        << again.err;
    EXPECT_TRUE(stdfs::exists(keys() / "chan")) << "nothing removed without --private";
    RunResult priv = g({"keys", "remove", "chan", "--private"});
    EXPECT_EQ(priv.status, 0) << priv.err;
    EXPECT_EQ(priv.out, "removed: " + (keys() / "chan").string() + "\n");
    EXPECT_FALSE(stdfs::exists(keys() / "chan"));
    RunResult none = g({"keys", "remove", "chan", "--private"});
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.err.find("no key 'chan' in " + keys().string()), std::string::npos) << none.err;
    // Both present: both go.
    ASSERT_EQ(run_isolated(conda_sign_exe(), {"--keys-dir", keys().string(), "--keygen", "pair"}, t_.path()).status, 0);
    RunResult both = g({"keys", "remove", "pair", "--private", "--json"});
    EXPECT_EQ(both.status, 0);
    EXPECT_EQ(json::parse(both.out)["removed"].size(), 2u);
    EXPECT_FALSE(stdfs::exists(keys() / "pair.pub"));
    EXPECT_FALSE(stdfs::exists(keys() / "pair"));
}

TEST_F(CondaGuard, UnknownSubcommandIsNamed) {
    for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
             {"foo"}, {"keys", "foo"}, {"state", "foo"}, {"keys", "--keys-dir", "/tmp", "foo"}}) {
        RunResult r = g(cmd);
        EXPECT_EQ(r.status, 2);
        EXPECT_NE(r.err.find("unknown subcommand 'foo'"), std::string::npos) << cmd[0] << ": " << r.err;
        EXPECT_EQ(r.err.find("A subcommand is required"), std::string::npos) << r.err;
    }
    RunResult none = g({"keys"});
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.err.find("'conda-guard keys' needs a subcommand: list, show, remove"), std::string::npos)
        << none.err;
}

// Options cannot swallow operands: each value-taking option, put before the
// operands, takes exactly one value, and every operand is still checked.
// Before the fix `verify --key K a b` checked only b and could exit 0.
TEST_F(CondaGuard, A19_verify_options_do_not_swallow_files) {
    Deadline d(60);
    ASSERT_EQ(sign_channel().status, 0);
    const auto alpha = (ch() / "noarch" / "alpha-1.0-0.conda").string();
    const auto gamma = (ch() / "linux-64" / "gamma-1.0-0.tar.bz2").string();
    RunResult r = g({"verify", "--key", "chan", "--keys-dir", keys().string(), "--min-key-bits", "2048", "-j", "1",
                     alpha, gamma, "--json"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    json j = json::parse(r.out);
    ASSERT_EQ(j["results"].size(), 2u) << r.out;
    EXPECT_EQ(j["results"][0]["path"], alpha);
    EXPECT_EQ(j["results"][1]["path"], gamma);
    // A tampered first file must not be hidden behind --key: the command fails.
    std::string bytes = read_file(alpha);
    bytes.back() ^= 1;
    write_file(alpha, bytes);
    RunResult bad = g({"verify", "--key", "chan", alpha, gamma});
    EXPECT_EQ(bad.status, 1) << bad.out << bad.err;
    EXPECT_NE(bad.out.find(alpha), std::string::npos) << bad.out;
    // Repeating the option is how to give more keys.
    EXPECT_EQ(g({"verify", "--key", "chan", "--key", "other", gamma}).status, 0);
}

TEST_F(CondaGuard, A19_verify_channel_options_do_not_swallow_the_channel) {
    Deadline d(60);
    ASSERT_EQ(sign_channel().status, 0);
    RunResult r = g({"verify-channel", "--channel-id", "demo", "--state-dir", (t_ / "state").string(), "--keys-dir",
                     keys().string(), "--min-key-bits", "2048", "-j", "1", "--key", "chan", ch().string()});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("noarch: index VALID"), std::string::npos) << r.out;
    RunResult extra = g({"verify-channel", "--key", "chan", ch().string(), (t_ / "other").string()});
    EXPECT_EQ(extra.status, 2) << "a second operand is refused, not ignored\n" << extra.out;
}

TEST_F(CondaGuard, A19_index_options_do_not_swallow_the_channel) {
    Deadline d(60);
    RunResult r = g({"index", "--sign", "chan", "--channel-id", "demo", "--expires", "7d", "--keys-dir",
                     keys().string(), "--min-key-bits", "2048", "-j", "1", ch().string()});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(stdfs::exists(ch() / "noarch" / "repodata.json.sig"));
    EXPECT_EQ(g({"index", "--sign", "chan", "--channel-id", "demo", ch().string(), (t_ / "other").string()}).status,
              2);
}

TEST_F(CondaGuard, A19_keys_options_do_not_swallow_the_action_or_name) {
    Deadline d(60);
    write_file(keys() / "junk.pub", "nonsense\n");
    RunResult list = g({"keys", "--keys-dir", keys().string(), "--min-key-bits", "2048", "list", "--json"});
    EXPECT_EQ(list.status, 1) << list.err;
    EXPECT_EQ(json::parse(list.out)["keys"].size(), 2u) << "both keys listed";
    RunResult show = g({"keys", "--keys-dir", keys().string(), "--min-key-bits", "2048", "show", "chan"});
    EXPECT_EQ(show.status, 0) << show.err;
    EXPECT_NE(show.out.find("name:        chan\n"), std::string::npos) << show.out;
    RunResult remove = g({"keys", "--keys-dir", keys().string(), "--min-key-bits", "2048", "remove", "junk"});
    EXPECT_EQ(remove.status, 0) << remove.err;
    EXPECT_FALSE(stdfs::exists(keys() / "junk.pub"));
    EXPECT_EQ(g({"keys", "--keys-dir", keys().string(), "show", "chan", "junk"}).status, 2)
        << "a second name is refused, not ignored";
}

TEST_F(CondaGuard, A19_state_options_do_not_swallow_the_action_or_channel) {
    Deadline d(60);
    ASSERT_EQ(sign_channel().status, 0);
    ASSERT_EQ(g({"verify-channel", ch().string(), "--index-only"}).status, 0);
    const std::string state = (t_ / "state").string();
    RunResult show = g({"state", "--state-dir", state, "show"});
    EXPECT_EQ(show.status, 0) << show.err;
    EXPECT_NE(show.out.find("demo noarch version 1"), std::string::npos) << show.out;
    EXPECT_EQ(g({"state", "--state-dir", state, "reset", "demo", "other"}).status, 2)
        << "a second channel is refused, not ignored";
    RunResult reset = g({"state", "--state-dir", state, "reset", "demo"});
    EXPECT_EQ(reset.status, 0) << reset.err;
    EXPECT_EQ(reset.out, "forgot channel 'demo'\n");
}

// Output cannot be forged: a file name holding a newline and an ANSI escape
// prints as one line per finding with the escapes visible.
TEST_F(CondaGuard, A19_control_characters_in_names_are_escaped) {
    Deadline d(60);
    const std::string evil = "x\nfake.conda  VALID  \x1b[32mok-1.0-0.conda";
    write_file(ch() / "noarch" / evil, "not a package");
    const std::string shown = "x\\nfake.conda  VALID  \\x1b[32mok-1.0-0.conda";
    RunResult v = g({"verify", (ch() / "noarch" / evil).string()});
    EXPECT_EQ(v.status, 1);
    EXPECT_EQ(std::count(v.out.begin(), v.out.end(), '\n'), 1) << v.out;
    EXPECT_EQ(v.out.find('\x1b'), std::string::npos) << v.out;
    EXPECT_NE(v.out.find(shown), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("MISSING_SIG"), std::string::npos) << v.out;
    // JSON keeps the name as it is, escaped by JSON itself.
    json j = json::parse(g({"verify", (ch() / "noarch" / evil).string(), "--json"}).out);
    EXPECT_EQ(j["results"][0]["path"], (ch() / "noarch" / evil).string());
    // index lists it as left out: one line on stderr, escaped.
    RunResult idx = g({"index", ch().string()});
    EXPECT_EQ(idx.status, 1);
    EXPECT_EQ(idx.err.find('\x1b'), std::string::npos) << idx.err;
    EXPECT_NE(idx.err.find("conda-guard: noarch/" + shown + ": left out of the index"), std::string::npos) << idx.err;
    EXPECT_EQ(idx.err.find("\nfake.conda"), std::string::npos) << "the name did not start a line of its own";
}
