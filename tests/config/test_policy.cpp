// The policy file: defaults, precedence, every error's position, lookups.
#include <condaguard/channel/verify.hpp>
#include <condaguard/config/policy.hpp>

#include "../support/support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

const std::string fp_a(64, 'a');
const std::string fp_b = std::string(63, 'b') + "c";

class PolicyFiles : public ::testing::Test {
protected:
    stdfs::path write(const std::string& name, const std::string& text, mode_t mode = 0644) {
        const stdfs::path p = t_ / name;
        write_file(p, text, mode);
        ::chmod(p.c_str(), mode);
        return p;
    }
    // The PolicyError's message for `text`, or "" when it loads.
    std::string error_of(const std::string& text) {
        try {
            load_policy({.files = {write("guard.yaml", text)}, .explicit_file = true});
        } catch (const PolicyError& e) {
            return e.what();
        }
        return "";
    }
    TempDir t_;
};

}  // namespace

TEST(Policy, DefaultsAreTheTrustModels) {
    const Policy p;
    EXPECT_EQ(p.min_rsa_bits.value, 2048u);
    EXPECT_EQ(p.min_rsa_bits.source, "default");
    EXPECT_TRUE(p.revoked_keys.empty());
    EXPECT_FALSE(p.max_index_age);
    EXPECT_EQ(p.max_index_bytes.value, default_max_index_bytes);
    EXPECT_EQ(p.parallel.value, 4u);
    EXPECT_FALSE(p.min_age);
    EXPECT_EQ(p.link_scripts.value, LinkScripts::Allow);
    EXPECT_EQ(p.rule_for("conda-forge", "https://conda.anaconda.org/conda-forge"), nullptr);
    EXPECT_FALSE(p.weak_rsa_allowed());
}

TEST_F(PolicyFiles, MissingDefaultFilesAreSkipped) {
    const Policy p = load_policy(default_policy_sources(t_ / "home"));
    EXPECT_EQ(p.parallel.source, "default");
    EXPECT_TRUE(p.channels.empty());
}

TEST_F(PolicyFiles, MissingExplicitFileIsAnError) {
    try {
        load_policy({.files = {t_ / "nope.yaml"}, .explicit_file = true});
        FAIL();
    } catch (const PolicyError& e) {
        EXPECT_NE(std::string(e.what()).find((t_ / "nope.yaml").string() + ": does not exist"), std::string::npos)
            << e.what();
    }
}

TEST_F(PolicyFiles, EveryKeyIsRead) {
    const stdfs::path f = write("guard.yaml", R"(# a policy
min_rsa_bits: 3072
revoked_keys:
  - fingerprint: )" + fp_a + R"(
    reason: "laptop stolen"
    date: 2026-01-02
max_index_age: 30d
max_index_bytes: 512MiB
parallel: 8
min_age: 3d
link_scripts: refuse
channels:
  - match: conda-forge
    keys: [MyKey, "sha256:)" + fp_b + R"("]
    index: required
    channel_id: cf
)");
    const Policy p = load_policy({.files = {f}, .explicit_file = true});
    EXPECT_EQ(p.min_rsa_bits.value, 3072u);
    EXPECT_EQ(p.min_rsa_bits.source, f.string() + ":2:15");
    ASSERT_EQ(p.revoked_keys.size(), 1u);
    EXPECT_EQ(p.revoked_keys[0].reason, "laptop stolen");
    EXPECT_EQ(p.revoked_keys[0].date, "2026-01-02");
    EXPECT_EQ(p.max_index_age->value, Seconds(30 * 86400));
    EXPECT_EQ(p.max_index_bytes.value, 512u << 20);
    EXPECT_EQ(p.parallel.value, 8u);
    EXPECT_EQ(p.min_age->value, Seconds(3 * 86400));
    EXPECT_EQ(p.link_scripts.value, LinkScripts::Refuse);
    ASSERT_EQ(p.channels.size(), 1u);
    const ChannelRule& r = p.channels[0];
    EXPECT_EQ(r.match, "conda-forge");
    ASSERT_TRUE(r.keys);
    EXPECT_TRUE(r.keys->value.allows("MyKey", fp_a));
    EXPECT_TRUE(r.keys->value.allows("Other", fp_b));
    EXPECT_FALSE(r.keys->value.allows("Other", fp_a));
    EXPECT_EQ(r.index.value, IndexRule::Required);
    EXPECT_EQ(r.channel_id->value, "cf");
    EXPECT_EQ(r.channel_id->source, f.string() + ":16:17");
}

TEST_F(PolicyFiles, LaterFileOverridesPerKeyAndMergesChannelRules) {
    const stdfs::path sys = write("sys.yaml", "parallel: 2\nmin_age: 1d\nchannels:\n  - match: conda-forge\n"
                                              "    keys: [Sys]\n    channel_id: cf\n  - match: bioconda\n"
                                              "    index: required\n");
    const stdfs::path user = write("user.yaml", "parallel: 16\nchannels:\n  - match: conda-forge\n    keys: [Mine]\n");
    const Policy p = load_policy({.files = {sys, user}, .explicit_file = false});
    EXPECT_EQ(p.parallel.value, 16u);
    EXPECT_EQ(p.parallel.source, user.string() + ":1:11");
    EXPECT_EQ(p.min_age->source, sys.string() + ":2:10");
    ASSERT_EQ(p.channels.size(), 2u);
    EXPECT_EQ(p.channels[0].keys->value.names, std::vector<std::string>{"Mine"});
    EXPECT_EQ(p.channels[0].channel_id->value, "cf") << "a key the later file does not give is kept";
    EXPECT_EQ(p.channels[1].index.value, IndexRule::Required);
}

TEST_F(PolicyFiles, EveryErrorNamesFileLineAndColumn) {
    const std::string f = (t_ / "guard.yaml").string();
    struct Case {
        std::string text;
        std::string expected;
    };
    const std::vector<Case> cases{
        {"parallel: 4\nmin_agee: 3d\n", f + ":2:1: key 'min_agee': unknown key"},
        {"max_index_age: 30 days\n", f + ":1:16: key 'max_index_age': expected a duration"},
        {"min_age: 0d\n", f + ":1:10: key 'min_age': expected a duration"},
        {"revoked_keys:\n  - fingerprint: abc\n    reason: x\n    date: 2026-01-02\n",
         f + ":2:18: key 'revoked_keys.fingerprint': expected a fingerprint"},
        {"revoked_keys:\n  - fingerprint: " + fp_a + "\n    reason: x\n    date: yesterday\n",
         f + ":4:11: key 'revoked_keys.date': expected a date"},
        {"parallel: [1, 2]\n", f + ":1:11: key 'parallel': expected a whole number from 1 to 64, found a list"},
        {"parallel: 65\n", f + ":1:11: key 'parallel': expected a whole number from 1 to 64, found '65'"},
        {"parallel: \"4\"\n", f + ":1:11: key 'parallel': expected a whole number"},
        {"min_rsa_bits: 512\n", f + ":1:15: key 'min_rsa_bits': expected a whole number from 1024 to 16384"},
        {"max_index_bytes: 1TB\n", f + ":1:18: key 'max_index_bytes': expected a size"},
        {"link_scripts: maybe\n", f + ":1:15: key 'link_scripts': expected allow or refuse, found 'maybe'"},
        {"channels:\n  - match: x\n    index: sometimes\n", f + ":3:12: key 'channels.index': expected required or if-signed"},
        {"channels:\n  - match: x\n    keys: [../evil]\n", f + ":3:12: key 'channels.keys': expected a key name"},
        {"channels:\n  - match: x\n    keys: []\n", f + ":3:11: key 'channels.keys': an empty list allows no key"},
        {"channels:\n  - match: x\n    key: [A]\n", f + ":3:5: key 'channels.key': unknown key"},
        {"channels:\n  - keys: [A]\n", f + ":2:5: key 'channels': a rule without 'match'"},
        {"channels:\n  - match: https://u:p@host/chan\n", f + ":2:12: key 'channels.match': a URL prefix without credentials"},
        {"parallel: 4\nparallel: 5\n", f + ":2:1: duplicate key 'parallel'"},
        {"parallel: 4\n  min_age: [3d\n", f + ":2:"},
        {"base: &a [1]\nparallel: *a\n", f + ":1:7: anchors (&name) are not allowed"},
        {"- parallel\n", f + ":1:1: expected a mapping of settings, found a list"},
    };
    for (const Case& c : cases) {
        const std::string e = error_of(c.text);
        EXPECT_EQ(e.rfind(c.expected, 0), 0u) << "text:\n" << c.text << "error: " << e;
    }
}

TEST_F(PolicyFiles, AnEmptyFileChangesNothing) {
    EXPECT_EQ(error_of(""), "");
    EXPECT_EQ(error_of("# nothing here\n"), "");
}

TEST_F(PolicyFiles, AliasBombIsRefusedBeforeExpansion) {
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'j'; ++c)
        bomb += fmt::format("{}: &{} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n", c, c,
                            fmt::arg("p", static_cast<char>(c - 1)));
    EXPECT_NE(error_of(bomb).find("anchors (&name) are not allowed"), std::string::npos);
}

TEST_F(PolicyFiles, NodeCountIsCapped) {
    std::string many = "channels:\n";
    for (int i = 0; i < 30000; ++i) many += "  - x\n";
    EXPECT_NE(error_of(many).find("more than 20000 values"), std::string::npos);
}

TEST_F(PolicyFiles, OversizedFileIsRefused) {
    EXPECT_NE(error_of(std::string(max_policy_file_bytes + 1, '#')).find("larger than"), std::string::npos);
}

TEST_F(PolicyFiles, A6_policy_file_writable_by_others_is_refused) {
    const stdfs::path f = write("guard.yaml", "parallel: 2\n", 0666);
    try {
        load_policy({.files = {f}, .explicit_file = true});
        FAIL() << "a world-writable policy was read";
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()), f.string() + ": is writable by group or others (mode 0666)");
    }
    // The same holds for the default files: a planted default is no less dangerous.
    EXPECT_THROW(load_policy({.files = {f}, .explicit_file = false}), PolicyError);
    ::chmod(f.c_str(), 0644);
    EXPECT_EQ(load_policy({.files = {f}, .explicit_file = true}).parallel.value, 2u);
}

TEST_F(PolicyFiles, A6_policy_in_directory_writable_by_others_is_refused) {
    stdfs::create_directory(t_ / "open");
    const stdfs::path f = write("open/guard.yaml", "parallel: 2\n");
    ::chmod((t_ / "open").c_str(), 0777);
    EXPECT_THROW(load_policy({.files = {f}, .explicit_file = true}), PolicyError);
    EXPECT_THROW(load_policy({.files = {f}, .explicit_file = false}), PolicyError);
}

// The default files are optional: one that is not there is skipped even in an
// unsafe folder (nothing of it is read); one that is there still refuses.
TEST_F(PolicyFiles, A6_missing_default_policy_in_unsafe_directory_is_skipped) {
    stdfs::create_directory(t_ / "open");
    ::chmod((t_ / "open").c_str(), 0777);
    const stdfs::path f = t_ / "open" / "guard.yaml";
    EXPECT_EQ(load_policy({.files = {f}, .explicit_file = false}).parallel.value, default_parallel_transfers);
    EXPECT_THROW(load_policy({.files = {f}, .explicit_file = true}), PolicyError);
}

TEST_F(PolicyFiles, A6_symlinked_policy_is_refused) {
    const stdfs::path real = write("real.yaml", "parallel: 2\n");
    stdfs::create_symlink(real, t_ / "guard.yaml");
    EXPECT_THROW(load_policy({.files = {t_ / "guard.yaml"}, .explicit_file = true}), PolicyError);
}

TEST_F(PolicyFiles, A21_revoked_key_listed) {
    const stdfs::path f = write("guard.yaml", "revoked_keys:\n  - fingerprint: " + fp_a +
                                                  "\n    reason: laptop stolen\n    date: 2026-01-02T10:00:00Z\n"
                                                  "  - fingerprint: sha256:" + fp_b + "\n    reason: rotated\n"
                                                  "    date: 2025-12-31\n");
    const Policy p = load_policy({.files = {f}, .explicit_file = true});
    ASSERT_NE(p.revoked(fp_a), nullptr);
    EXPECT_EQ(p.revoked(fp_a)->reason, "laptop stolen");
    EXPECT_EQ(p.revoked(fp_a)->source, f.string() + ":2:5");
    const std::string upper_b = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBC";
    ASSERT_NE(p.revoked(upper_b), nullptr);
    EXPECT_EQ(p.revoked(upper_b)->reason, "rotated");
    EXPECT_EQ(p.revoked(std::string(64, 'd')), nullptr);
}

TEST_F(PolicyFiles, RuleForPrefersTheExactNameThenTheLongestUrlPrefix) {
    const stdfs::path f = write("guard.yaml", R"(channels:
  - match: https://a.example
    channel_id: host
  - match: https://a.example/chan
    channel_id: chan
  - match: https://A.Example/chan/sub/
    channel_id: sub
  - match: conda-forge
    channel_id: cf
)");
    const Policy p = load_policy({.files = {f}, .explicit_file = true});
    auto id = [&](std::string_view name, std::string_view url) -> std::string {
        const ChannelRule* r = p.rule_for(name, url);
        return r != nullptr ? r->channel_id->value : "-";
    };
    EXPECT_EQ(id("https://a.example/chan", "https://a.example/chan"), "chan");
    EXPECT_EQ(id("x", "https://a.example/chan/linux-64"), "chan");
    EXPECT_EQ(id("x", "https://a.example/chan/sub"), "sub");
    EXPECT_EQ(id("x", "HTTPS://a.EXAMPLE/chan/sub/deeper"), "sub");
    EXPECT_EQ(id("x", "https://a.example/channel2"), "host") << "not on a segment boundary of /chan";
    EXPECT_EQ(id("x", "https://a.example"), "host");
    EXPECT_EQ(id("x", "https://a.example.evil/chan"), "-");
    EXPECT_EQ(id("x", "http://a.example/chan"), "-");
    EXPECT_EQ(id("conda-forge", "https://a.example/chan"), "cf") << "an exact name wins";
    EXPECT_EQ(id("conda-forge-extra", "https://b.example/x"), "-");
}

TEST_F(PolicyFiles, LowRsaFloorIsFlagged) {
    const Policy p = load_policy({.files = {write("guard.yaml", "min_rsa_bits: 1024\n")}, .explicit_file = true});
    EXPECT_TRUE(p.weak_rsa_allowed());
    EXPECT_EQ(p.key_policy().min_rsa_bits, 1024u);
}

TEST_F(PolicyFiles, A1_signatures_none_is_read_with_its_source_and_required_is_the_default) {
    const stdfs::path f = write("guard.yaml", "channels:\n  - match: conda-forge\n    signatures: none\n"
                                              "  - match: https://repo.example.org/signed\n    signatures: required\n"
                                              "  - match: bioconda\n    index: if-signed\n");
    const Policy p = load_policy({.files = {f}, .explicit_file = true});
    ASSERT_EQ(p.channels.size(), 3u);
    EXPECT_EQ(p.channels[0].signatures.value, SignatureRule::None);
    EXPECT_EQ(p.channels[0].signatures.source, f.string() + ":3:17");
    EXPECT_EQ(p.channels[1].signatures.value, SignatureRule::Required);
    EXPECT_EQ(p.channels[2].signatures.value, SignatureRule::Required);
    EXPECT_EQ(p.channels[2].signatures.source, "default");
    EXPECT_EQ(to_string(SignatureRule::None), "none");
    EXPECT_EQ(to_string(SignatureRule::Required), "required");
}

TEST_F(PolicyFiles, A1_signatures_none_with_keys_channel_id_or_a_required_index_is_refused) {
    const std::string f = (t_ / "guard.yaml").string();
    struct Case {
        std::string text;
        std::string expected;
    };
    const std::vector<Case> cases{
        {"channels:\n  - match: conda-forge\n    signatures: none\n    keys: [A]\n",
         f + ":3:17: key 'channels.signatures': 'signatures: none' (" + f + ":3:17) conflicts with 'keys' (" + f +
             ":4:11)"},
        {"channels:\n  - match: conda-forge\n    channel_id: cf\n    signatures: none\n",
         f + ":4:17: key 'channels.signatures': 'signatures: none' (" + f + ":4:17) conflicts with 'channel_id'"},
        {"channels:\n  - match: conda-forge\n    index: required\n    signatures: none\n",
         f + ":4:17: key 'channels.signatures': 'signatures: none' (" + f +
             ":4:17) conflicts with 'index: required' (" + f + ":3:12)"},
        {"channels:\n  - match: conda-forge\n    signatures: maybe\n",
         f + ":3:17: key 'channels.signatures': expected required or none, found 'maybe'"},
    };
    for (const Case& c : cases) {
        const std::string e = error_of(c.text);
        EXPECT_EQ(e.rfind(c.expected, 0), 0u) << "text:\n" << c.text << "error: " << e;
    }
    // index: if-signed said explicitly is no conflict.
    EXPECT_EQ(error_of("channels:\n  - match: conda-forge\n    signatures: none\n    index: if-signed\n"), "");
}

TEST_F(PolicyFiles, A1_signatures_none_conflicting_with_an_earlier_files_keys_names_both_places) {
    const stdfs::path sys = write("sys.yaml", "channels:\n  - match: conda-forge\n    keys: [Sys]\n");
    const stdfs::path user = write("user.yaml", "channels:\n  - match: conda-forge\n    signatures: none\n");
    try {
        load_policy({.files = {sys, user}, .explicit_file = false});
        FAIL() << "loaded";
    } catch (const PolicyError& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind(user.string() + ":3:17: key 'channels.signatures'", 0), 0u) << what;
        EXPECT_NE(what.find("conflicts with 'keys' (" + sys.string() + ":3:11)"), std::string::npos) << what;
    }
}
