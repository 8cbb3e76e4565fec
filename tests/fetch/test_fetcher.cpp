// The Fetcher against the tests' fault server and Debian's nginx: caps,
// timeouts, retries, redirects, credentials, conditional requests, zstd,
// file:// and parallel HTTP/2 transfers. Every test checks the outcome and
// that the sink never holds more than the cap.
#include <condaguard/fetch/fetcher.hpp>

#include "../support/fault_server.hpp"
#include "../support/nginx.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <zstd.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard {
namespace {

using test::Deadline;
using test::Fault;
using test::FaultServer;
using test::Route;
using test::TempDir;
using namespace std::chrono_literals;

// A file the fetcher writes into (the caller-owned descriptor).
class Sink {
public:
    Sink() : path_(dir_ / "sink"), fd_(::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) {
        if (fd_ < 0) throw std::runtime_error("cannot create the sink");
    }
    ~Sink() { ::close(fd_); }
    int fd() const { return fd_; }
    std::uint64_t size() const {
        struct stat st {};
        if (::fstat(fd_, &st) != 0) throw std::runtime_error("fstat");
        return static_cast<std::uint64_t>(st.st_size);
    }
    std::string contents() const { return test::read_file(path_); }

private:
    TempDir dir_;
    std::filesystem::path path_;
    int fd_;
};

// Options that keep failing tests fast.
TransportOptions quick() {
    return TransportOptions{.connect_timeout = 2000ms, .low_speed_time = 5s, .max_retries = 3, .backoff = 10ms};
}

FetchResponse fetch_one(const TransportOptions& o, FetchRequest r) {
    Fetcher f(o);
    std::vector<FetchResponse> out = f.fetch(std::span<const FetchRequest>(&r, 1));
    EXPECT_EQ(out.size(), 1u);
    return out.at(0);
}

std::string pattern(std::size_t n, unsigned seed = 1) {
    std::string s(n, '\0');
    unsigned x = seed * 2654435761u + 1;
    for (char& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

std::string zstd_compress(const std::string& data) {
    std::string out(ZSTD_compressBound(data.size()), '\0');
    const std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
    if (ZSTD_isError(n) != 0) throw std::runtime_error("ZSTD_compress");
    out.resize(n);
    return out;
}

// ---------------------------------------------------------------- caps (A12)

TEST(Fetch, A12_body_over_cap_aborted) {
    Deadline d(20);
    FaultServer server;
    server.route("/endless", Route{.fault = Fault::Endless});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/endless"), .sink_fd = sink.fd(), .max_bytes = 1 << 20});
    EXPECT_EQ(r.outcome, FetchOutcome::TooLarge);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_NE(r.reason.find("cap of 1048576 bytes"), std::string::npos) << r.reason;
    EXPECT_LE(sink.size(), 1u << 20);
}

TEST(Fetch, A12_announced_length_over_cap_refused_before_the_body) {
    Deadline d(20);
    FaultServer server;
    server.route("/big", Route{.body = pattern(100'000)});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/big"), .sink_fd = sink.fd(), .max_bytes = 99'999});
    EXPECT_EQ(r.outcome, FetchOutcome::TooLarge);
    EXPECT_EQ(sink.size(), 0u);
}

TEST(Fetch, A12_cap_plus_one_refused_cap_exactly_accepted) {
    Deadline d(20);
    FaultServer server;
    const std::string body = pattern(5000);
    // No Content-Length: only the count in the write callback can refuse it.
    server.route("/y", Route{.body = body, .fault = Fault::NoLength});
    {
        Sink sink;
        const auto r = fetch_one(quick(), {.url = server.url("/y"), .sink_fd = sink.fd(), .max_bytes = 5000});
        EXPECT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
        EXPECT_EQ(r.bytes, 5000u);
        EXPECT_EQ(r.sha256, sha256_bytes(body));
        EXPECT_EQ(sink.contents(), body);
    }
    {
        Sink sink;
        const auto r = fetch_one(quick(), {.url = server.url("/y"), .sink_fd = sink.fd(), .max_bytes = 4999});
        EXPECT_EQ(r.outcome, FetchOutcome::TooLarge);
        EXPECT_EQ(r.attempts, 1u);
        EXPECT_LE(sink.size(), 4999u);
    }
}

// ------------------------------------------------------------ timeouts (A13)

TEST(Fetch, A13_slow_drip_times_out) {
    Deadline d(20);
    FaultServer server;
    server.route("/drip", Route{.body = pattern(200), .fault = Fault::SlowDrip, .drip_interval = 300ms});
    Sink sink;
    TransportOptions o = quick();
    o.low_speed_limit = 100;
    o.low_speed_time = 1s;
    o.max_retries = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = fetch_one(o, {.url = server.url("/drip"), .sink_fd = sink.fd(), .max_bytes = 200});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_NE(r.reason.find("too slow"), std::string::npos) << r.reason;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    EXPECT_LE(sink.size(), 200u);
}

TEST(Fetch, A13_stalled_body_times_out_and_is_retried) {
    Deadline d(20);
    FaultServer server;
    server.route("/stall", Route{.body = "abc", .fault = Fault::Stall});
    Sink sink;
    TransportOptions o = quick();
    o.low_speed_time = 1s;
    o.max_retries = 1;
    const auto r = fetch_one(o, {.url = server.url("/stall"), .sink_fd = sink.fd(), .max_bytes = 100});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_EQ(server.hits("/stall"), 2u);
    EXPECT_LE(sink.size(), 100u);
}

TEST(Fetch, A13_connect_timeout) {
    Deadline d(20);
    test::StalledListener stalled;
    Sink sink;
    TransportOptions o = quick();
    o.connect_timeout = 300ms;
    o.max_retries = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = fetch_one(o, {.url = stalled.url("/x"), .sink_fd = sink.fd(), .max_bytes = 100});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_NE(r.reason.find("Timeout was reached"), std::string::npos) << r.reason;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(sink.size(), 0u);
}

// --------------------------------------------------------------- retries

TEST(Fetch, retries_503_then_200) {
    Deadline d(20);
    FaultServer server;
    const std::string body = pattern(10'000);
    server.route("/flaky", Route{.body = body, .fail_first = 2, .fail_status = 503});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/flaky"), .sink_fd = sink.fd(), .max_bytes = 10'000});
    EXPECT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    EXPECT_EQ(r.attempts, 3u);
    EXPECT_EQ(server.hits("/flaky"), 3u);
    EXPECT_EQ(r.sha256, sha256_bytes(body));
}

TEST(Fetch, retries_429_and_gives_up_after_max_retries) {
    Deadline d(20);
    FaultServer server;
    server.route("/busy", Route{.body = "x", .fail_first = 100, .fail_status = 429});
    Sink sink;
    TransportOptions o = quick();
    o.max_retries = 2;
    const auto r = fetch_one(o, {.url = server.url("/busy"), .sink_fd = sink.fd(), .max_bytes = 10});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_EQ(r.http_status, 429);
    EXPECT_EQ(r.attempts, 3u);
    EXPECT_EQ(r.reason, "HTTP 429 (3 attempts)");
    EXPECT_EQ(server.hits("/busy"), 3u);
}

TEST(Fetch, no_retry_on_404_or_403) {
    Deadline d(20);
    FaultServer server;
    server.route("/forbidden", Route{.status = 403, .body = "no"});
    Sink sink;
    const auto missing = fetch_one(quick(), {.url = server.url("/missing"), .sink_fd = sink.fd(), .max_bytes = 10});
    EXPECT_EQ(missing.outcome, FetchOutcome::NotFound);
    EXPECT_EQ(missing.attempts, 1u);
    EXPECT_EQ(server.hits("/missing"), 1u);
    const auto forbidden = fetch_one(quick(), {.url = server.url("/forbidden"), .sink_fd = sink.fd(), .max_bytes = 10});
    EXPECT_EQ(forbidden.outcome, FetchOutcome::Failed);
    EXPECT_EQ(forbidden.http_status, 403);
    EXPECT_EQ(forbidden.attempts, 1u);
    EXPECT_EQ(server.hits("/forbidden"), 1u);
    EXPECT_EQ(sink.size(), 0u);  // error pages never reach the sink
}

TEST(Fetch, reset_mid_body_retried_and_sink_restarted) {
    Deadline d(20);
    FaultServer server;
    const std::string body = pattern(512 * 1024, 7);
    server.route("/reset", Route{.body = body, .fault = Fault::ResetMidBody, .fault_times = 1});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/reset"), .sink_fd = sink.fd(), .max_bytes = body.size()});
    EXPECT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_EQ(r.sha256, sha256_bytes(body));
    EXPECT_EQ(sink.contents(), body);
}

TEST(Fetch, truncated_body_fails) {
    Deadline d(20);
    FaultServer server;
    const std::string body = pattern(100'000);
    server.route("/short", Route{.body = body, .fault = Fault::Truncate});
    Sink sink;
    TransportOptions o = quick();
    o.max_retries = 1;
    const auto r = fetch_one(o, {.url = server.url("/short"), .sink_fd = sink.fd(), .max_bytes = body.size()});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_EQ(r.bytes, 0u);
    EXPECT_LE(sink.size(), body.size());
}

TEST(Fetch, content_length_longer_than_body_fails) {
    Deadline d(20);
    FaultServer server;
    const std::string body = pattern(1000);
    server.route("/cl", Route{.body = body, .fault = Fault::WrongLength, .declared_length = 1500});
    Sink sink;
    TransportOptions o = quick();
    o.max_retries = 0;
    const auto r = fetch_one(o, {.url = server.url("/cl"), .sink_fd = sink.fd(), .max_bytes = 2000});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_LE(sink.size(), 2000u);
}

// HTTP ends the body at Content-Length: what follows is not part of it. The
// digest describes exactly the bytes delivered, so the caller's comparison
// with the signed record is what refuses it.
TEST(Fetch, content_length_shorter_than_body_delivers_only_the_announced_bytes) {
    Deadline d(20);
    FaultServer server;
    const std::string body = pattern(1000);
    server.route("/cl", Route{.body = body, .fault = Fault::WrongLength, .declared_length = 400});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/cl"), .sink_fd = sink.fd(), .max_bytes = 2000});
    ASSERT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    EXPECT_EQ(r.bytes, 400u);
    EXPECT_EQ(r.sha256, sha256_bytes(body.substr(0, 400)));
    EXPECT_NE(r.sha256, sha256_bytes(body));
}

TEST(Fetch, connections_reused_across_transfers_and_calls) {
    Deadline d(20);
    FaultServer server;
    for (int i = 0; i < 5; ++i) server.route("/p" + std::to_string(i), Route{.body = pattern(1000, i)});
    TransportOptions o = quick();
    o.parallel = 1;
    Fetcher f(o);
    std::vector<std::unique_ptr<Sink>> sinks;
    std::vector<FetchRequest> reqs;
    for (int i = 0; i < 5; ++i) {
        sinks.push_back(std::make_unique<Sink>());
        reqs.push_back({.url = server.url("/p" + std::to_string(i)), .sink_fd = sinks.back()->fd(), .max_bytes = 1000});
    }
    for (const auto& r : f.fetch(reqs)) EXPECT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    for (const auto& r : f.fetch(reqs)) EXPECT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    EXPECT_EQ(server.requests().size(), 10u);
    EXPECT_EQ(server.connections(), 1u);
}

TEST(Fetch, proxy_servers_used_by_scheme) {
    Deadline d(20);
    FaultServer proxy;
    // A proxy sees the absolute URL as the request target.
    proxy.route("http://channel.invalid/main/x", Route{.body = "via proxy"});
    TransportOptions o = quick();
    o.proxies = {{"http", proxy.origin()}};
    Sink sink;
    const auto r = fetch_one(o, {.url = "http://channel.invalid/main/x", .sink_fd = sink.fd(), .max_bytes = 100});
    EXPECT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    EXPECT_EQ(sink.contents(), "via proxy");
    EXPECT_EQ(proxy.hits("http://channel.invalid/main/x"), 1u);
}

// ------------------------------------------------------ redirects (A26)

TEST(Fetch, redirect_followed_within_origin) {
    Deadline d(20);
    FaultServer server;
    server.route("/old", Route{.status = 302, .location = "/new"});
    server.route("/new", Route{.body = "moved"});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/old"), .sink_fd = sink.fd(), .max_bytes = 100,
                                       .same_origin_only = true});
    EXPECT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    EXPECT_EQ(sink.contents(), "moved");
}

TEST(Fetch, sig_redirect_to_another_origin_refused) {
    Deadline d(20);
    FaultServer channel, elsewhere;
    elsewhere.route("/x.sig", Route{.body = "forged"});
    channel.route("/x.sig", Route{.status = 302, .location = elsewhere.url("/x.sig")});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = channel.url("/x.sig"), .sink_fd = sink.fd(), .max_bytes = 4096,
                                       .same_origin_only = true});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_NE(r.reason.find("another origin"), std::string::npos) << r.reason;
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(elsewhere.hits("/x.sig"), 0u);
    EXPECT_EQ(sink.size(), 0u);

    // The same redirect is followed for a request that allows it.
    Sink other;
    const auto ok = fetch_one(quick(), {.url = channel.url("/x.sig"), .sink_fd = other.fd(), .max_bytes = 4096});
    EXPECT_EQ(ok.outcome, FetchOutcome::Ok) << ok.reason;
    EXPECT_EQ(elsewhere.hits("/x.sig"), 1u);
}

TEST(Fetch, A26_redirect_https_to_http_refused) {
    CONDAGUARD_NGINX_OR_SKIP();
    Deadline d(20);
    FaultServer plain;
    plain.route("/pkg.conda", Route{.body = "downgraded"});
    TempDir root;
    test::write_file(root / "file", "x");
    test::Nginx nginx(root.path(), "location = /redirect { return 302 " + plain.url("/pkg.conda") + "; }");
    Sink sink;
    TransportOptions o = quick();
    o.ca_bundle = test::test_ca_file();
    const auto r = fetch_one(o, {.url = nginx.https_url("/redirect"), .sink_fd = sink.fd(), .max_bytes = 100});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_NE(r.reason.find("from https to http refused"), std::string::npos) << r.reason;
    EXPECT_EQ(plain.hits("/pkg.conda"), 0u);
    EXPECT_EQ(sink.size(), 0u);
}

// ----------------------------------------------------- credentials (A26)

TEST(Fetch, A26_credentials_never_over_http) {
    Deadline d(20);
    FaultServer server;
    server.route("/t/abc-123/main/x", Route{.body = "x"});
    server.route("/main/x", Route{.body = "x"});
    const std::string port = std::to_string(server.port());
    std::vector<FetchRequest> reqs;
    Sink a, b, c;
    reqs.push_back({.url = "http://127.0.0.1:" + port + "/t/abc-123/main/x", .sink_fd = a.fd(), .max_bytes = 10});
    reqs.push_back({.url = "http://alice:s3cret@127.0.0.1:" + port + "/main/x", .sink_fd = b.fd(), .max_bytes = 10});
    reqs.push_back({.url = "HTTP://alice@127.0.0.1:" + port + "/main/x", .sink_fd = c.fd(), .max_bytes = 10});
    Fetcher f(quick());
    const auto out = f.fetch(reqs);
    for (const auto& r : out) {
        EXPECT_EQ(r.outcome, FetchOutcome::Failed);
        EXPECT_EQ(r.reason, "credentials in the URL are never sent over plain http");
        EXPECT_EQ(r.attempts, 0u);
    }
    EXPECT_TRUE(server.requests().empty());  // nothing, not even a connection's request

    // Nor through a redirect that adds them.
    server.route("/hop", Route{.status = 302, .location = "http://alice:s3cret@127.0.0.1:" + port + "/main/x"});
    Sink e;
    const auto hop = fetch_one(quick(), {.url = server.url("/hop"), .sink_fd = e.fd(), .max_bytes = 10});
    EXPECT_EQ(hop.outcome, FetchOutcome::Failed);
    EXPECT_NE(hop.reason.find("redirect to plain http with credentials in the URL refused"), std::string::npos)
        << hop.reason;
    EXPECT_EQ(hop.reason.find("s3cret"), std::string::npos) << hop.reason;
    EXPECT_EQ(server.hits("/main/x"), 0u);
    for (const auto& logged : server.requests()) EXPECT_FALSE(logged.has_header("authorization"));
}

TEST(Fetch, A26_token_redacted_in_reason) {
    Deadline d(20);
    FaultServer channel, elsewhere;
    // The refusal names where the redirect went: redacted.
    channel.route("/x.sig", Route{.status = 302,
                                  .location = "http://bob:hunter2pw@127.0.0.1:" + std::to_string(elsewhere.port()) +
                                              "/t/TOPSECRET-9/x.sig?key=qsecret"});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = channel.url("/x.sig"), .sink_fd = sink.fd(), .max_bytes = 4096,
                                       .same_origin_only = true});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    for (const char* secret : {"hunter2pw", "bob", "TOPSECRET-9", "qsecret"})
        EXPECT_EQ(r.reason.find(secret), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find("/t/<TOKEN>/x.sig"), std::string::npos) << r.reason;

    // curl's own error text about a URL carrying a token and a password.
    const auto refused = fetch_one(quick(), {.url = "https://carol:pw-XYZZY@127.0.0.1:1/t/TOK-777/c/x",
                                             .sink_fd = sink.fd(), .max_bytes = 10});
    EXPECT_EQ(refused.outcome, FetchOutcome::Failed);
    EXPECT_FALSE(refused.reason.empty());
    for (const char* secret : {"carol", "pw-XYZZY", "TOK-777"})
        EXPECT_EQ(refused.reason.find(secret), std::string::npos) << refused.reason;
}


// ------------------------------------------------- conditional requests

TEST(Fetch, conditional_request_sends_if_none_match_and_yields_not_modified) {
    Deadline d(20);
    FaultServer server;
    const std::string body = R"({"packages":{}})";
    server.route("/repodata.json",
                 Route{.body = body, .etag = "\"v1\"", .last_modified = "Tue, 01 Jul 2025 10:00:00 GMT"});
    Sink sink;
    const auto full = fetch_one(quick(), {.url = server.url("/repodata.json"), .sink_fd = sink.fd(), .max_bytes = 1000});
    ASSERT_EQ(full.outcome, FetchOutcome::Ok) << full.reason;
    EXPECT_EQ(full.etag, "\"v1\"");
    EXPECT_EQ(full.last_modified, "Tue, 01 Jul 2025 10:00:00 GMT");
    EXPECT_EQ(sink.contents(), body);

    Sink again;
    const auto cached = fetch_one(quick(), {.url = server.url("/repodata.json"), .sink_fd = again.fd(),
                                            .max_bytes = 1000, .if_none_match = full.etag,
                                            .if_modified_since = full.last_modified});
    EXPECT_EQ(cached.outcome, FetchOutcome::NotModified) << cached.reason;
    EXPECT_EQ(cached.http_status, 304);
    EXPECT_EQ(again.size(), 0u);
    const auto log = server.requests();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_FALSE(log[0].has_header("if-none-match"));
    EXPECT_EQ(log[1].header("if-none-match"), "\"v1\"");
    EXPECT_EQ(log[1].header("if-modified-since"), "Tue, 01 Jul 2025 10:00:00 GMT");

    // A 304 nobody asked for is no answer.
    server.route("/odd", Route{.status = 304});
    const auto odd = fetch_one(quick(), {.url = server.url("/odd"), .sink_fd = again.fd(), .max_bytes = 10});
    EXPECT_EQ(odd.outcome, FetchOutcome::Failed);
}

// ------------------------------------------------------------------ zstd

TEST(Fetch, zstd_body_decoded_and_hashed_as_decoded) {
    Deadline d(20);
    FaultServer server;
    std::string json = "{\"packages\":{";
    for (int i = 0; i < 5000; ++i) json += "\"p" + std::to_string(i) + "-1.0-0.conda\":{\"size\":" + std::to_string(i) + "},";
    json += "\"z\":{}}}";
    const std::string zst = zstd_compress(json);
    ASSERT_LT(zst.size(), json.size() / 4);
    server.route("/repodata.json.zst", Route{.body = zst});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/repodata.json.zst"), .sink_fd = sink.fd(),
                                       .max_bytes = json.size(), .encoding = BodyEncoding::Zstd});
    ASSERT_EQ(r.outcome, FetchOutcome::Ok) << r.reason;
    EXPECT_EQ(r.bytes, json.size());
    EXPECT_EQ(r.sha256, sha256_bytes(json));
    EXPECT_EQ(sink.contents(), json);
}

TEST(Fetch, A12_zstd_bomb_capped) {
    Deadline d(20);
    FaultServer server;
    const std::string bomb = zstd_compress(std::string(64u << 20, '\0'));
    ASSERT_LT(bomb.size(), 64u * 1024);
    server.route("/repodata.json.zst", Route{.body = bomb});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/repodata.json.zst"), .sink_fd = sink.fd(),
                                       .max_bytes = 1 << 20, .encoding = BodyEncoding::Zstd});
    EXPECT_EQ(r.outcome, FetchOutcome::TooLarge);
    EXPECT_NE(r.reason.find("(decompressed)"), std::string::npos) << r.reason;
    EXPECT_LE(sink.size(), 1u << 20);
}

TEST(Fetch, zstd_stream_cut_inside_its_frame_fails) {
    Deadline d(20);
    FaultServer server;
    const std::string json = pattern(300'000);
    std::string zst = zstd_compress(json);
    zst.resize(zst.size() - 10);
    server.route("/cut.zst", Route{.body = zst});
    Sink sink;
    const auto r = fetch_one(quick(), {.url = server.url("/cut.zst"), .sink_fd = sink.fd(), .max_bytes = json.size(),
                                       .encoding = BodyEncoding::Zstd});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_NE(r.reason.find("zstd"), std::string::npos) << r.reason;
}

// -------------------------------------------------------------- file:// (A15)

TEST(Fetch, A15_file_url_read_capped_and_hashed) {
    TempDir dir;
    const std::string body = pattern(70'000);
    test::write_file(dir / "pkg.conda", body);
    Sink sink;
    const std::string url = "file://" + (dir / "pkg.conda").string();
    const auto ok = fetch_one(quick(), {.url = url, .sink_fd = sink.fd(), .max_bytes = body.size()});
    ASSERT_EQ(ok.outcome, FetchOutcome::Ok) << ok.reason;
    EXPECT_EQ(ok.sha256, sha256_bytes(body));
    EXPECT_EQ(sink.contents(), body);
    Sink small;
    const auto big = fetch_one(quick(), {.url = url, .sink_fd = small.fd(), .max_bytes = body.size() - 1});
    EXPECT_EQ(big.outcome, FetchOutcome::TooLarge);
    EXPECT_EQ(small.size(), 0u);
    const auto missing = fetch_one(quick(), {.url = url + ".nope", .sink_fd = small.fd(), .max_bytes = 10});
    EXPECT_EQ(missing.outcome, FetchOutcome::NotFound);
}

TEST(Fetch, A15_file_url_symlink_refused) {
    TempDir dir;
    test::write_file(dir / "real.conda", "data");
    std::filesystem::create_symlink(dir / "real.conda", dir / "link.conda");
    Sink sink;
    const auto r = fetch_one(quick(), {.url = "file://" + (dir / "link.conda").string(), .sink_fd = sink.fd(),
                                       .max_bytes = 100});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_EQ(r.reason, "is a symbolic link, not a regular file");
    EXPECT_EQ(sink.size(), 0u);
}

TEST(Fetch, A15_file_url_fifo_refused) {
    Deadline d(20);
    TempDir dir;
    ASSERT_EQ(::mkfifo((dir / "fifo.conda").c_str(), 0600), 0);
    Sink sink;
    const auto r = fetch_one(quick(), {.url = "file://" + (dir / "fifo.conda").string(), .sink_fd = sink.fd(),
                                       .max_bytes = 100});
    EXPECT_EQ(r.outcome, FetchOutcome::Failed);
    EXPECT_EQ(r.reason, "is a FIFO, not a regular file");
    EXPECT_EQ(sink.size(), 0u);
}

TEST(Fetch, unsupported_schemes_refused) {
    Sink sink;
    for (const char* url : {"ftp://127.0.0.1/x", "scp://h/x", "/no/scheme", "file://otherhost/etc/passwd"}) {
        const auto r = fetch_one(quick(), {.url = url, .sink_fd = sink.fd(), .max_bytes = 100});
        EXPECT_EQ(r.outcome, FetchOutcome::Failed) << url;
    }
}

// ------------------------------------------------------- nginx, TLS, HTTP/2

struct Channel {
    TempDir root;
    std::vector<std::string> bodies;
    explicit Channel(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            bodies.push_back(pattern(100'000 + i * 37'000, static_cast<unsigned>(i) + 3));
            test::write_file(root / ("f" + std::to_string(i)), bodies.back());
        }
    }
};

std::vector<FetchResponse> fetch_all(const TransportOptions& o, const Channel& ch,
                                     const std::function<std::string(std::string_view)>& url,
                                     std::vector<std::unique_ptr<Sink>>& sinks, FetchProgress* last = nullptr) {
    std::vector<FetchRequest> reqs;
    for (std::size_t i = 0; i < ch.bodies.size(); ++i) {
        sinks.push_back(std::make_unique<Sink>());
        reqs.push_back({.url = url("/f" + std::to_string(i)), .sink_fd = sinks.back()->fd(),
                        .max_bytes = ch.bodies[i].size()});
    }
    Fetcher f(o);
    return f.fetch(reqs, [&](const FetchProgress& p) {
        if (last != nullptr) *last = p;
    });
}

TEST(Fetch, parallel_transfers_over_http_and_http2) {
    CONDAGUARD_NGINX_OR_SKIP();
    Deadline d(30);
    Channel ch(8);
    test::Nginx nginx(ch.root.path());
    TransportOptions o = quick();
    o.parallel = 4;
    o.ca_bundle = test::test_ca_file();
    for (const bool tls : {false, true}) {
        std::vector<std::unique_ptr<Sink>> sinks;
        FetchProgress last{};
        const auto out = fetch_all(o, ch, [&](std::string_view p) { return tls ? nginx.https_url(p) : nginx.http_url(p); },
                                   sinks, &last);
        ASSERT_EQ(out.size(), 8u);
        for (std::size_t i = 0; i < 8; ++i) {
            EXPECT_EQ(out[i].outcome, FetchOutcome::Ok) << i << ": " << out[i].reason;
            EXPECT_EQ(out[i].sha256, sha256_bytes(ch.bodies[i])) << i;
            EXPECT_EQ(sinks[i]->contents(), ch.bodies[i]) << i;
        }
        EXPECT_EQ(last.files_done, 8u);
        EXPECT_EQ(last.files_total, 8u);
        EXPECT_EQ(last.bytes_done, last.bytes_expected);
    }
    const std::string log = nginx.access_log();
    EXPECT_NE(log.find("GET /f7 HTTP/1.1 200"), std::string::npos) << log;
    EXPECT_NE(log.find("GET /f7 HTTP/2.0 200"), std::string::npos) << log;
}

TEST(Fetch, A26_https_needs_the_ca_unless_verification_is_off) {
    CONDAGUARD_NGINX_OR_SKIP();
    Deadline d(30);
    Channel ch(1);
    test::Nginx nginx(ch.root.path());
    TransportOptions with_ca = quick();
    with_ca.ca_bundle = test::test_ca_file();
    Sink a, b, c;
    const auto ok = fetch_one(with_ca, {.url = nginx.https_url("/f0"), .sink_fd = a.fd(), .max_bytes = 100'000});
    EXPECT_EQ(ok.outcome, FetchOutcome::Ok) << ok.reason;

    // Verification on, the system's CAs only: refused at once (no retry).
    const auto refused = fetch_one(quick(), {.url = nginx.https_url("/f0"), .sink_fd = b.fd(), .max_bytes = 100'000});
    EXPECT_EQ(refused.outcome, FetchOutcome::Failed);
    EXPECT_EQ(refused.attempts, 1u);
    EXPECT_NE(refused.reason.find("certificate"), std::string::npos) << refused.reason;
    EXPECT_EQ(b.size(), 0u);

    TransportOptions insecure = quick();
    insecure.verify_tls = false;
    const auto off = fetch_one(insecure, {.url = nginx.https_url("/f0"), .sink_fd = c.fd(), .max_bytes = 100'000});
    EXPECT_EQ(off.outcome, FetchOutcome::Ok) << off.reason;
    EXPECT_EQ(off.sha256, sha256_bytes(ch.bodies[0]));
}

}  // namespace
}  // namespace condaguard
