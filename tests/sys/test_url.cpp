// URLs: parts, credentials, redaction, prefixes.
#include <condaguard/sys/url.hpp>

#include <gtest/gtest.h>

using namespace condaguard;

TEST(Url, PartsAndToken) {
    const auto u = parse_url("HTTPS://user:pw@Host.Example:8443/t/abc-1/chan/?q=1#f");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->scheme, "https");
    EXPECT_EQ(u->user_info, "user:pw");
    EXPECT_EQ(u->host, "host.example:8443");
    EXPECT_EQ(u->path, "/chan");
    EXPECT_EQ(u->token, "abc-1");
    EXPECT_EQ(u->without_credentials(), "https://host.example:8443/chan");
    EXPECT_EQ(u->with_credentials(), "https://user:pw@host.example:8443/t/abc-1/chan");
    EXPECT_FALSE(parse_url("conda-forge"));
    EXPECT_FALSE(parse_url("https:///x"));
    EXPECT_TRUE(parse_url("file:///srv/x"));
}

TEST(Url, A26_token_redacted) {
    EXPECT_EQ(redact_url("https://conda.example/t/s3cr3t-tok/chan/linux-64/x.conda"),
              "https://conda.example/t/<TOKEN>/chan/linux-64/x.conda");
}

TEST(Url, A26_basic_auth_redacted) {
    EXPECT_EQ(redact_url("https://alice:hunter2@conda.example/chan"), "https://conda.example/chan");
    EXPECT_EQ(redact_url("https://alice@conda.example/chan"), "https://conda.example/chan");
    EXPECT_EQ(redact_url("https://conda.example/a@b/chan"), "https://conda.example/a@b/chan") << "an @ in the path is not auth";
}

TEST(Url, A26_query_string_dropped) {
    EXPECT_EQ(redact_url("https://u:p@conda.example/t/tk/chan/repodata.json?sig=abc&key=def#frag"),
              "https://conda.example/t/<TOKEN>/chan/repodata.json");
}

TEST(Url, PrefixOnSegmentBoundaries) {
    EXPECT_TRUE(url_has_prefix("https://a.example/chan", "https://a.example/chan"));
    EXPECT_TRUE(url_has_prefix("https://a.example/chan/linux-64", "https://a.example/chan/"));
    EXPECT_TRUE(url_has_prefix("https://A.EXAMPLE/chan", "https://a.example"));
    EXPECT_FALSE(url_has_prefix("https://a.example/channel2", "https://a.example/chan"));
    EXPECT_FALSE(url_has_prefix("https://a.example.evil/chan", "https://a.example"));
    EXPECT_FALSE(url_has_prefix("http://a.example/chan", "https://a.example"));
    EXPECT_FALSE(url_has_prefix("conda-forge", "https://a.example"));
}

TEST(Url, A26_every_form_redacted) {
    EXPECT_EQ(redact_url("https://u:p@h.example:8443/t/tk-1/conda-forge/linux-64/x.conda?sig=1#f"),
              "https://h.example:8443/t/<TOKEN>/conda-forge/linux-64/x.conda");
    EXPECT_EQ(redact_url("https://conda.anaconda.org/conda-forge"), "https://conda.anaconda.org/conda-forge");
    EXPECT_EQ(redact_url("http://a@b@host/"), "http://host/");
    EXPECT_EQ(redact_url("file:///srv/t/abc/x"), "file:///srv/t/<TOKEN>/x");
    EXPECT_EQ(redact_url("https://h/p\nq"), "https://h/p q");
    EXPECT_TRUE(url_has_credentials("https://h/t/abc/c"));
    EXPECT_TRUE(url_has_credentials("https://user@h/c"));
    EXPECT_FALSE(url_has_credentials("https://h/c?x=/t/a"));
    EXPECT_FALSE(url_has_credentials("https://h/conda-forge/linux-64/x.conda"));
}
