// Downloads: one libcurl multi loop for http and https (parallel transfers,
// HTTP/2 where offered, connections reused, retries with exponential backoff,
// connect and low-speed timeouts), file:// read by ourselves through
// fs::open_untrusted. Every body is capped, hashed (SHA-256) as it arrives and
// written to a descriptor the caller owns; nothing is held in memory. Returns
// data, never prints. Credentials in URLs are never sent over plain http and
// never appear in a reason.
#pragma once

#include <condaguard/sys/url.hpp>
#include <condaguard/trust/digest.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

// How to reach servers: filled by the caller from .condarc (spec §7.2).
struct TransportOptions {
    bool verify_tls = true;
    // A CA bundle file or a c_rehash'ed directory; unset: libcurl's default.
    std::optional<std::filesystem::path> ca_bundle;
    std::optional<std::filesystem::path> client_cert, client_key;
    // proxy_servers: "https://host" or "https" (then "all://host", "all") ->
    // proxy URL. No match: no proxy (libcurl's own reading of *_proxy
    // variables is switched off; the CLI passes them here).
    std::map<std::string, std::string> proxies;
    std::chrono::milliseconds connect_timeout{9150};
    // A transfer slower than low_speed_limit bytes/s for low_speed_time ends
    // (timed out, then retried). libcurl counts whole seconds.
    std::chrono::seconds low_speed_time{60};
    long low_speed_limit = 1;
    // Retries after the first attempt, on 5xx, 408, 429, resets, truncated
    // bodies and timeouts (never on other 4xx, TLS verification failures,
    // caps or refused redirects); waits backoff, 2*backoff, 4*backoff...
    unsigned max_retries = 3;
    std::chrono::milliseconds backoff{1000};
    // Transfers at once, and libcurl's connection limits (total and per host).
    unsigned parallel = 4;
};

enum class BodyEncoding {
    Identity,
    // The body is a zstd stream (repodata.json.zst): decompressed as it
    // arrives; the cap, the hash, the size and the sink see decoded bytes.
    Zstd,
};

struct FetchRequest {
    // http://, https:// or file:// (a local path, host empty or localhost).
    // May carry credentials (/t/TOKEN/, user:pass@): they are used only over
    // https and never appear in a reason.
    std::string url;
    // Borrowed, the caller owns it: the body is written from offset 0 with
    // pwrite (the file is truncated before each retry). On any outcome but
    // Ok its content is partial and must be discarded; it never holds more
    // than max_bytes bytes.
    int sink_fd = -1;
    // Cap on the (decoded) body: one byte more and the transfer is aborted
    // with TooLarge. 0 allows only an empty body.
    std::uint64_t max_bytes = 0;
    BodyEncoding encoding = BodyEncoding::Identity;
    // Redirects may not leave scheme://host:port (.sig files).
    bool same_origin_only = false;
    // Conditional GET (indexes): a 304 answer gives NotModified.
    std::optional<std::string> if_none_match, if_modified_since;
};

enum class FetchOutcome {
    Ok,           // 200, complete, within the cap: sha256 and bytes describe the sink
    NotModified,  // 304 to a conditional request; the sink is empty
    NotFound,     // 404 or 410, or a file:// path that does not exist
    TooLarge,     // more than max_bytes (announced or received)
    Failed,       // everything else; see reason
};

struct FetchResponse {
    FetchOutcome outcome = FetchOutcome::Failed;
    long http_status = 0;     // the final response's status (0 for file:// or no answer)
    std::uint64_t bytes = 0;  // decoded bytes written to the sink
    Sha256Digest sha256{};    // of those bytes (meaningful with Ok)
    std::string etag, last_modified;  // from the final response's headers
    // One line, no URL credentials (redact_url), empty with Ok and NotModified.
    std::string reason;
    unsigned attempts = 0;  // attempts made (1 + retries); 0 when refused before any
};

struct FetchProgress {
    std::uint64_t bytes_done = 0;
    // The sum of the requests' max_bytes: exact when each cap is the
    // expected size (packages), an upper bound otherwise.
    std::uint64_t bytes_expected = 0;
    std::size_t files_done = 0;
    std::size_t files_total = 0;
};

class Fetcher {
public:
    // Throws std::system_error when libcurl cannot be set up.
    explicit Fetcher(TransportOptions options);
    ~Fetcher();
    Fetcher(Fetcher&&) noexcept;
    Fetcher& operator=(Fetcher&&) noexcept;

    // Runs every request, `parallel` at a time; one response per request, in
    // request order. A request's failure never stops the others. `progress`
    // is called from this thread now and then (at most ten times a second)
    // and once at the end; `on_done` as soon as each request has its
    // response (its index and the response also returned), so the caller can
    // go on with it while the others transfer. Throws only on libcurl setup
    // or multi-handle errors (std::system_error) and what the callbacks throw.
    std::vector<FetchResponse> fetch(std::span<const FetchRequest> requests,
                                     const std::function<void(const FetchProgress&)>& progress = {},
                                     const std::function<void(std::size_t, const FetchResponse&)>& on_done = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace condaguard
