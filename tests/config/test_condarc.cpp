// conda's configuration: search path, precedence, merging, the environment,
// pkgs_dirs, and channel resolution (spec §1.1, §3.1, §7).
#include <condaguard/config/condarc.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

class Condarc : public ::testing::Test {
protected:
    CondaEnvironment env() const {
        return CondaEnvironment{.home = home(), .root_prefix = t_ / "root", .target_prefix = t_ / "env",
                                .variables = vars, .native_subdir = "linux-64"};
    }
    stdfs::path home() const { return t_ / "home"; }
    void put(const stdfs::path& p, const std::string& text) {
        stdfs::create_directories(p.parent_path());
        write_file(p, text);
    }
    CondaConfig load() { return load_condarc(env()); }
    std::string error_of() {
        try {
            load();
        } catch (const CondarcError& e) {
            return e.what();
        }
        return "";
    }
    std::map<std::string, std::string> vars;
    TempDir t_;
};

}  // namespace

TEST_F(Condarc, SearchPathIsConda) {
    vars = {{"XDG_CONFIG_HOME", (t_ / "xdg").string()}, {"CONDARC", (t_ / "rc.yml").string()}};
    const std::vector<stdfs::path> expected{
        "/etc/conda/.condarc", "/etc/conda/condarc", "/etc/conda/condarc.d",
        "/var/lib/conda/.condarc", "/var/lib/conda/condarc", "/var/lib/conda/condarc.d",
        t_ / "root/.condarc", t_ / "root/condarc", t_ / "root/condarc.d",
        t_ / "xdg/conda/.condarc", t_ / "xdg/conda/condarc", t_ / "xdg/conda/condarc.d",
        home() / ".config/conda/.condarc", home() / ".config/conda/condarc", home() / ".config/conda/condarc.d",
        home() / ".conda/.condarc", home() / ".conda/condarc", home() / ".conda/condarc.d",
        home() / ".condarc",
        t_ / "env/.condarc", t_ / "env/condarc", t_ / "env/condarc.d",
        t_ / "rc.yml"};
    EXPECT_EQ(condarc_search_path(env()), expected);
    vars = {{"CONDA_ROOT", (t_ / "croot").string()}};
    const auto p = condarc_search_path(env());
    EXPECT_EQ(p[6], t_ / "croot/.condarc") << "$CONDA_ROOT over the root prefix";
    EXPECT_EQ(p.size(), expected.size() - 4) << "unset XDG_CONFIG_HOME and CONDARC drop their entries";
}

TEST_F(Condarc, DefaultsWithNoFile) {
    const CondaConfig c = load();
    EXPECT_TRUE(c.files.empty());
    EXPECT_TRUE(c.channels.value.empty());
    EXPECT_EQ(c.channel_alias.value, "https://conda.anaconda.org");
    EXPECT_EQ(c.ssl_verify.value.mode, SslVerify::Mode::Default);
    EXPECT_DOUBLE_EQ(c.remote_connect_timeout_secs.value, 9.15);
    EXPECT_DOUBLE_EQ(c.remote_read_timeout_secs.value, 60.0);
    EXPECT_EQ(c.remote_max_retries.value, 3u);
    EXPECT_FALSE(c.offline.value);
    EXPECT_TRUE(c.repodata_use_zst.value);
    EXPECT_EQ(c.subdirs.value, (std::vector<std::string>{"linux-64", "noarch"}));
    EXPECT_EQ(c.pkgs_dirs.value, (std::vector<stdfs::path>{t_ / "root/pkgs", home() / ".conda/pkgs"}));
}

TEST_F(Condarc, LaterFilesWinForScalarsAndListsMergeHigherFirst) {
    put(t_ / "root/.condarc", "channels: [base-a, shared]\nremote_max_retries: 1\nchannel_alias: https://root.example\n");
    put(home() / ".condarc", "channels:\n  - user-a\n  - shared\nremote_max_retries: 5\n");
    put(t_ / "env/condarc", "channels: [env-a]\n");
    const CondaConfig c = load();
    EXPECT_EQ(c.files, (std::vector<stdfs::path>{t_ / "root/.condarc", home() / ".condarc", t_ / "env/condarc"}));
    EXPECT_EQ(c.channels.value, (std::vector<std::string>{"env-a", "user-a", "shared", "base-a"}));
    EXPECT_EQ(c.channels.source, (t_ / "env/condarc").string() + ":1:11");
    EXPECT_EQ(c.remote_max_retries.value, 5u);
    EXPECT_EQ(c.remote_max_retries.source, home().string() + "/.condarc:4:21");
    EXPECT_EQ(c.channel_alias.value, "https://root.example");
}

TEST_F(Condarc, FinalStopsHigherPrecedenceSources) {
    put(t_ / "root/.condarc", "channels: #!final\n  - locked\nssl_verify: true  #!final\noffline: false\n");
    put(home() / ".condarc", "channels: [mine]\nssl_verify: false\noffline: true\n");
    vars = {{"CONDA_SSL_VERIFY", "false"}};
    const CondaConfig c = load();
    EXPECT_EQ(c.channels.value, std::vector<std::string>{"locked"});
    EXPECT_EQ(c.ssl_verify.value.mode, SslVerify::Mode::Default);
    EXPECT_TRUE(c.offline.value);
}

TEST_F(Condarc, CondarcDirectoryIsReadInNameOrderAndOtherFilesIgnored) {
    put(home() / ".conda/condarc.d/20-b.yaml", "channels: [b]\nremote_read_timeout_secs: 20\n");
    put(home() / ".conda/condarc.d/10-a.yml", "channels: [a]\nremote_read_timeout_secs: 10\n");
    put(home() / ".conda/condarc.d/30-c.txt", "channels: [c]\n");
    put(home() / ".conda/condarc.d/40-d.yml.bak", "this: [is not yaml\n");
    const CondaConfig c = load();
    EXPECT_EQ(c.channels.value, (std::vector<std::string>{"b", "a"}));
    EXPECT_DOUBLE_EQ(c.remote_read_timeout_secs.value, 20);
    EXPECT_EQ(c.files.size(), 2u);
}

TEST_F(Condarc, CondarcWithoutSuffixIsIgnored) {
    put(t_ / "myrc", "channels: [ignored]\n");
    put(t_ / "other.yaml", "channels: [used]\n");
    vars = {{"CONDARC", (t_ / "myrc").string()}};
    EXPECT_TRUE(load().channels.value.empty());
    vars = {{"CONDARC", (t_ / "other.yaml").string()}};
    EXPECT_EQ(load().channels.value, std::vector<std::string>{"used"});
}

TEST_F(Condarc, EnvironmentOverridesFilesAndAliasesWork) {
    put(home() / ".condarc", "channels: [file]\nssl_verify: true\nremote_connect_timeout_secs: 3\noffline: false\n");
    vars = {{"CONDA_CHANNELS", "env-a, env-b,,file"},
            {"CONDA_VERIFY_SSL", "/etc/ssl/bundle.pem"},
            {"CONDA_REMOTE_CONNECT_TIMEOUT_SECS", "2.5"},
            {"CONDA_OFFLINE", "yes"},
            {"CONDA_SUBDIR", "osx-arm64"}};
    const CondaConfig c = load();
    EXPECT_EQ(c.channels.value, (std::vector<std::string>{"env-a", "env-b", "file"}));
    EXPECT_EQ(c.channels.source, "CONDA_CHANNELS");
    EXPECT_EQ(c.ssl_verify.value.mode, SslVerify::Mode::CaBundle);
    EXPECT_EQ(c.ssl_verify.value.ca_bundle, "/etc/ssl/bundle.pem");
    EXPECT_EQ(c.ssl_verify.source, "CONDA_VERIFY_SSL");
    EXPECT_DOUBLE_EQ(c.remote_connect_timeout_secs.value, 2.5);
    EXPECT_TRUE(c.offline.value);
    EXPECT_EQ(c.subdirs.value, (std::vector<std::string>{"osx-arm64", "noarch"}));
}

TEST_F(Condarc, KeysAndTheirTypes) {
    put(home() / ".condarc", R"(channel_alias: https://user:pw@alias.example/t/tok-1/
default_channels: [https://mirror.example/main]
custom_channels:
  internal: https://internal.example/conda
custom_multichannels:
  team: [internal, conda-forge]
ssl_verify: truststore
client_cert: ~/cert.pem
proxy_servers:
  https: http://proxy.example:3128
remote_backoff_factor: 2
repodata_use_zst: false
unknown_key_conda_has: [1, 2, {x: y}]
subdirs: [linux-64]
)");
    const CondaConfig c = load();
    EXPECT_EQ(c.channel_alias.value, "https://user:pw@alias.example/t/tok-1");
    EXPECT_EQ(c.default_channels.value, std::vector<std::string>{"https://mirror.example/main"});
    EXPECT_EQ(c.custom_channels.at("internal").value, "https://internal.example/conda");
    EXPECT_EQ(c.custom_channels.at("internal").source, home().string() + "/.condarc:4:13");
    EXPECT_EQ(c.custom_channels.count("pkgs/pro"), 1u) << "the built-in entry stays";
    EXPECT_EQ(c.custom_multichannels.at("team").value, (std::vector<std::string>{"internal", "conda-forge"}));
    EXPECT_EQ(c.ssl_verify.value.mode, SslVerify::Mode::Truststore);
    EXPECT_EQ(c.client_ssl_cert->value, home() / "cert.pem");
    EXPECT_EQ(c.proxy_servers.at("https").value, "http://proxy.example:3128");
    EXPECT_DOUBLE_EQ(c.remote_backoff_factor.value, 2);
    EXPECT_FALSE(c.repodata_use_zst.value);
    EXPECT_EQ(c.subdirs.value, std::vector<std::string>{"linux-64"});
}

TEST_F(Condarc, WrongTypeForAKeyWeUseNamesFileLineColumn) {
    const std::string f = (home() / ".condarc").string();
    struct Case {
        std::string text;
        std::string expected;
    };
    const std::vector<Case> cases{
        {"channels: conda-forge\n", f + ":1:11: key 'channels': expected a list, found a string"},
        {"x: 1\nchannels:\n  - [a]\n", f + ":3:3: key 'channels': expected a string, found a list"},
        {"offline: maybe\n", f + ":1:10: key 'offline': expected true or false, found 'maybe'"},
        {"remote_read_timeout_secs: soon\n", f + ":1:27: key 'remote_read_timeout_secs': expected a number"},
        {"remote_max_retries: -1\n", f + ":1:21: key 'remote_max_retries': expected a whole number"},
        {"custom_channels: [a]\n", f + ":1:18: key 'custom_channels': expected a mapping"},
        {"custom_channels:\n  a: nope\n", f + ":2:6: key 'custom_channels.a': expected a URL"},
        {"channel_alias: conda.example\n", f + ":1:16: key 'channel_alias': expected a URL"},
        {"channels: [a\n", f + ":2:"},
        {"- a\n", f + ":1:1: expected a mapping of settings"},
        {"channels: [a]\nchannels: [b]\n", f + ":2:1: duplicate key 'channels'"},
    };
    for (const Case& c : cases) {
        put(home() / ".condarc", c.text);
        const std::string e = error_of();
        EXPECT_EQ(e.rfind(c.expected, 0), 0u) << "text:\n" << c.text << "error: " << e;
    }
}

TEST_F(Condarc, EnvsDirsDefaultFileAndEnvironmentSplitOnColon) {
    EXPECT_EQ(load().envs_dirs.value, (std::vector<stdfs::path>{t_ / "root/envs", home() / ".conda/envs"}));
    put(home() / ".condarc", "envs_dirs:\n  - ~/envs\n");
    EXPECT_EQ(load().envs_dirs.value, (std::vector<stdfs::path>{home() / "envs"}));
    vars = {{"CONDA_ENVS_DIRS", "/a/envs:/b/envs"}};  // os.pathsep, not ',' as for pkgs_dirs
    const CondaConfig c = load();
    EXPECT_EQ(c.envs_dirs.value, (std::vector<stdfs::path>{"/a/envs", "/b/envs", home() / "envs"}));
    EXPECT_EQ(c.envs_dirs.source, "CONDA_ENVS_DIRS");
}

TEST_F(Condarc, PkgsDirsFromFileAndEnvironment) {
    put(home() / ".condarc", "pkgs_dirs:\n  - ~/cache\n  - $SCRATCH/pkgs\n  - ~/cache/\n");
    vars = {{"SCRATCH", "/scratch"}};
    EXPECT_EQ(load().pkgs_dirs.value, (std::vector<stdfs::path>{home() / "cache", "/scratch/pkgs"}));
    vars = {{"CONDA_PKGS_DIRS", "/a/pkgs,/b/pkgs"}};
    const CondaConfig c = load();
    EXPECT_EQ(c.pkgs_dirs.value, (std::vector<stdfs::path>{"/a/pkgs", "/b/pkgs", home() / "cache", "$SCRATCH/pkgs"}))
        << "an unset variable stays as written";
    EXPECT_EQ(c.pkgs_dirs.source, "CONDA_PKGS_DIRS");
}

TEST_F(Condarc, AFifoIsRefusedWithoutBlocking) {
    Deadline d(20);
    stdfs::create_directories(home());
    ASSERT_EQ(::mkfifo((home() / ".condarc").c_str(), 0600), 0);
    // A FIFO is not a regular file: the search skips it, as conda does.
    EXPECT_TRUE(load().files.empty());
    vars = {{"CONDARC", (home() / ".condarc").string()}};
    EXPECT_TRUE(load().files.empty());
}

// §1.1 ------------------------------------------------------------------

namespace {

ResolvedChannel one(const CondaConfig& c, std::string_view v, const stdfs::path& cwd = "/work") {
    auto r = resolve_channel(c, v, cwd);
    EXPECT_EQ(r.size(), 1u) << v;
    return r.empty() ? ResolvedChannel{} : r.front();
}

}  // namespace

TEST(ResolveChannel, NameUnderChannelAlias) {
    const CondaConfig c;
    const ResolvedChannel r = one(c, "conda-forge");
    EXPECT_EQ(r.canonical_name, "conda-forge");
    EXPECT_EQ(r.base_url, "https://conda.anaconda.org/conda-forge");
    EXPECT_EQ(r.base_url_with_credentials, r.base_url);
    EXPECT_EQ(one(c, "conda-forge/linux-64").base_url, "https://conda.anaconda.org/conda-forge");
}

TEST(ResolveChannel, UrlUnderTheAliasGetsItsName) {
    const CondaConfig c;
    const ResolvedChannel r = one(c, "https://conda.anaconda.org/conda-forge/noarch/");
    EXPECT_EQ(r.canonical_name, "conda-forge");
    EXPECT_EQ(r.base_url, "https://conda.anaconda.org/conda-forge");
    const ResolvedChannel other = one(c, "https://example.com/chan");
    EXPECT_EQ(other.canonical_name, "https://example.com/chan");
}

TEST(ResolveChannel, DefaultsExpandsToDefaultChannels) {
    CondaConfig c;
    auto r = resolve_channel(c, "defaults", "/");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].canonical_name, "defaults");
    EXPECT_EQ(r[0].base_url, "https://repo.anaconda.com/pkgs/main");
    EXPECT_EQ(r[1].base_url, "https://repo.anaconda.com/pkgs/r");
    EXPECT_EQ(one(c, "https://repo.anaconda.com/pkgs/main").canonical_name, "defaults");
    c.custom_multichannels["defaults"] = {.value = {"https://mirror.example/main"}};
    r = resolve_channel(c, "defaults", "/");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].base_url, "https://mirror.example/main");
}

TEST(ResolveChannel, CustomChannelsLongestPrefix) {
    CondaConfig c;
    c.custom_channels["team"] = {.value = "https://a.example/conda"};
    c.custom_channels["team/sub"] = {.value = "https://b.example"};
    EXPECT_EQ(one(c, "pkgs/pro").base_url, "https://repo.anaconda.com/pkgs/pro");
    EXPECT_EQ(one(c, "pkgs/pro").canonical_name, "pkgs/pro");
    EXPECT_EQ(one(c, "team").base_url, "https://a.example/conda/team");
    EXPECT_EQ(one(c, "team/x").base_url, "https://a.example/conda/team/x");
    EXPECT_EQ(one(c, "team/sub/y").base_url, "https://b.example/team/sub/y");
    EXPECT_EQ(one(c, "teams").base_url, "https://conda.anaconda.org/teams") << "prefixes are whole segments";
}

TEST(ResolveChannel, MultichannelExpands) {
    CondaConfig c;
    c.custom_multichannels["team"] = {.value = {"conda-forge", "https://x.example/c"}};
    const auto r = resolve_channel(c, "team", "/");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].canonical_name, "team");
    EXPECT_EQ(r[0].base_url, "https://conda.anaconda.org/conda-forge");
    EXPECT_EQ(r[1].base_url, "https://x.example/c");
}

TEST(ResolveChannel, PathsBecomeFileUrls) {
    CondaConfig c;
    c.home = "/home/u";
    EXPECT_EQ(one(c, "./local", "/work/dir").base_url, "file:///work/dir/local");
    EXPECT_EQ(one(c, "../up/chan/linux-64", "/work/dir").base_url, "file:///work/up/chan");
    EXPECT_EQ(one(c, "/srv/chan/").base_url, "file:///srv/chan");
    EXPECT_EQ(one(c, "~/chan").base_url, "file:///home/u/chan");
    EXPECT_EQ(one(c, "file:///srv/chan").base_url, "file:///srv/chan");
    EXPECT_EQ(one(c, "/srv/chan").canonical_name, "file:///srv/chan");
}

TEST(ResolveChannel, CredentialsAreKeptApart) {
    CondaConfig c;
    c.channel_alias = {.value = "https://u:p@alias.example/t/tk-9"};
    const ResolvedChannel r = one(c, "private");
    EXPECT_EQ(r.canonical_name, "private");
    EXPECT_EQ(r.base_url, "https://alias.example/private");
    EXPECT_EQ(r.base_url_with_credentials, "https://u:p@alias.example/t/tk-9/private");
    const ResolvedChannel u = one(c, "https://other.example/t/abc/chan/linux-64");
    EXPECT_EQ(u.base_url, "https://other.example/chan");
    EXPECT_EQ(u.base_url_with_credentials, "https://other.example/t/abc/chan");
}

TEST(ResolveChannel, EmptyIsAnError) {
    EXPECT_THROW(resolve_channel(CondaConfig{}, "  ", "/"), ConfigError);
}
