// One libcurl multi loop (curl's tool_operate.c model): easy handles are
// added up to `parallel` at a time, the multi handle is performed and polled,
// finished transfers are drained with curl_multi_info_read and mapped back to
// their Transfer through CURLOPT_PRIVATE, and each handle is removed from the
// multi handle before it is cleaned up (curl::Attachment). Every body goes
// through one BodyPipeline (cap, zstd, SHA-256, pwrite to the caller's
// descriptor), for http(s) from curl's write callback and for file:// from
// our own reads.
#include <condaguard/fetch/fetcher.hpp>

#include <condaguard/sys/fs.hpp>
#include <lib/curl/handles.hpp>
#include <lib/zstd/handles.hpp>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <fmt/format.h>
#include <unistd.h>

namespace condaguard {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes of a non-200 body (an error page) read and dropped before the
// transfer is aborted; its status still decides the outcome.
constexpr std::size_t kErrorBodyCap = 64 * 1024;
constexpr long kMaxRedirects = 5;
constexpr std::size_t kFileChunk = 256 * 1024;
constexpr auto kProgressInterval = std::chrono::milliseconds(100);

bool is_scheme_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
           c == '.';
}
bool is_token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}
std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// One line of plain text: control bytes become spaces.
std::string one_line(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

// Free text (curl's error buffer) made fit for a reason: every URL in it
// redacted, every /t/TOKEN masked, and each known secret of the request
// replaced wherever it still appears.
std::string redact_text(std::string_view text, const std::vector<std::string>& secrets) {
    std::string out;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t sep = text.find("://", pos);
        if (sep == std::string_view::npos) break;
        std::size_t start = sep;
        while (start > pos && is_scheme_char(text[start - 1])) --start;
        std::size_t end = sep + 3;
        while (end < text.size() && std::string_view(" \t\r\n'\"<>").find(text[end]) == std::string_view::npos) ++end;
        out.append(text.substr(pos, start - pos));
        out += redact_url(text.substr(start, end - start));
        pos = end;
    }
    out.append(text.substr(pos));
    out = mask_tokens(out);
    for (const std::string& secret : secrets) {
        if (secret.empty()) continue;
        for (std::size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 8))
            out.replace(at, secret.size(), "<SECRET>");
    }
    return one_line(std::move(out));
}

struct ParsedUrl {
    std::string scheme, host, port, user, password, token, query;
    std::string origin() const { return scheme + "://" + host + ":" + port; }
};

// Parsed by curl's URL API (the parser the transfer itself uses); nullopt
// when curl cannot parse it.
std::optional<ParsedUrl> parse_url(const std::string& url) {
    curl::Url u;
    if (u.parse(url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) return std::nullopt;
    ParsedUrl p;
    p.scheme = lower(u.part(CURLUPART_SCHEME));
    p.host = lower(u.part(CURLUPART_HOST));
    p.port = u.part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
    p.user = u.part(CURLUPART_USER);
    p.password = u.part(CURLUPART_PASSWORD);
    p.query = u.part(CURLUPART_QUERY);
    const std::string path = u.part(CURLUPART_PATH);
    if (const std::size_t t = path.find("/t/"); t != std::string::npos) {
        std::size_t end = t + 3;
        while (end < path.size() && is_token_char(path[end])) ++end;
        p.token = path.substr(t + 3, end - t - 3);
    }
    return p;
}

std::vector<std::string> secrets_of(const ParsedUrl& p) {
    std::vector<std::string> out;
    for (const std::string* s : {&p.user, &p.password, &p.token, &p.query})
        if (!s->empty()) out.push_back(*s);
    // Longest first, so that a secret containing another is replaced whole.
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    return out;
}

void pwrite_all(int fd, const unsigned char* data, std::size_t n, std::uint64_t offset) {
    while (n > 0) {
        const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw fs::errno_error("cannot write the download");
        }
        data += w;
        n -= static_cast<std::size_t>(w);
        offset += static_cast<std::uint64_t>(w);
    }
}

// Cap, decode, hash, write: the one path every body takes.
class BodyPipeline {
public:
    enum class Stop { None, TooLarge, Decode, Sink };

    explicit BodyPipeline(const FetchRequest& req) : req_(req) {
        if (req_.encoding == BodyEncoding::Zstd) {
            dctx_ = zstd::make_dctx();
            out_size_ = ZSTD_DStreamOutSize();
            out_ = std::make_unique_for_overwrite<unsigned char[]>(out_size_);
        }
    }

    // Before each attempt: the sink emptied, the counters, hash and decoder reset.
    void restart() {
        if (::ftruncate(req_.sink_fd, 0) != 0) throw fs::errno_error("cannot truncate the download file");
        hash_ = Sha256{};
        bytes_ = raw_ = 0;
        frame_done_ = false;
        stop_ = Stop::None;
        stop_reason_.clear();
        if (dctx_) zstd::check(ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only), "ZSTD_DCtx_reset");
    }

    // The largest raw (on the wire) body that can decode within the cap.
    std::uint64_t raw_cap() const {
        if (req_.encoding == BodyEncoding::Identity) return req_.max_bytes;
        return req_.max_bytes + req_.max_bytes / 128 + 1024;  // >= ZSTD_COMPRESSBOUND(max_bytes)
    }

    // Takes the next raw bytes; false once stopped (stop() says why).
    bool feed(const unsigned char* data, std::size_t n) {
        if (stop_ != Stop::None) return false;
        try {
            raw_ += n;
            if (req_.encoding == BodyEncoding::Identity) return emit(data, n);
            if (raw_ > raw_cap()) return halt(Stop::TooLarge, too_large_reason());
            ZSTD_inBuffer in{data, n, 0};
            for (;;) {
                ZSTD_outBuffer out{out_.get(), out_size_, 0};
                const std::size_t r = ZSTD_decompressStream(dctx_.get(), &out, &in);
                if (ZSTD_isError(r) != 0)
                    return halt(Stop::Decode, std::string("zstd: ") + ZSTD_getErrorName(r));
                frame_done_ = r == 0;
                if (!emit(out_.get(), out.pos)) return false;
                if (in.pos == in.size && out.pos < out.size) return true;
            }
        } catch (const std::exception& e) {
            return halt(Stop::Sink, e.what());
        }
    }

    // After the last byte: a zstd body must end with a complete frame.
    bool complete() {
        if (req_.encoding == BodyEncoding::Zstd && !frame_done_)
            return halt(Stop::Decode, "zstd: the stream ends inside a frame");
        return stop_ == Stop::None;
    }

    Stop stop() const noexcept { return stop_; }
    const std::string& stop_reason() const noexcept { return stop_reason_; }
    std::uint64_t bytes() const noexcept { return bytes_; }
    Sha256Digest digest() { return hash_.finish(); }

private:
    bool emit(const unsigned char* data, std::size_t n) {
        if (n == 0) return true;
        if (n > req_.max_bytes - bytes_) return halt(Stop::TooLarge, too_large_reason());
        hash_.update({data, n});
        pwrite_all(req_.sink_fd, data, n, bytes_);
        bytes_ += n;
        return true;
    }
    bool halt(Stop s, std::string reason) {
        stop_ = s;
        stop_reason_ = one_line(std::move(reason));
        return false;
    }
    std::string too_large_reason() const {
        return fmt::format("larger than its cap of {} bytes{}", req_.max_bytes,
                           req_.encoding == BodyEncoding::Zstd ? " (decompressed)" : "");
    }

    const FetchRequest& req_;
    Sha256 hash_;
    zstd::DCtx dctx_;
    std::unique_ptr<unsigned char[]> out_;
    std::size_t out_size_ = 0;
    std::uint64_t bytes_ = 0, raw_ = 0;
    bool frame_done_ = false;
    Stop stop_ = Stop::None;
    std::string stop_reason_;
};

FetchResponse finish_body(BodyPipeline& body, FetchResponse r) {
    if (!body.complete()) {
        r.outcome = body.stop() == BodyPipeline::Stop::TooLarge ? FetchOutcome::TooLarge : FetchOutcome::Failed;
        r.reason = body.stop_reason();
    } else {
        r.outcome = FetchOutcome::Ok;
    }
    r.bytes = body.bytes();
    r.sha256 = body.digest();
    return r;
}

// file://: read by us (curl never sees file URLs), with the same cap,
// decoding and hash. The path is opened with fs::open_untrusted: a symbolic
// link, FIFO, device or directory is refused without blocking.
FetchResponse fetch_file(const FetchRequest& req) {
    FetchResponse r{.outcome = FetchOutcome::Failed, .attempts = 1};
    curl::Url u;
    if (u.parse(req.url, 0) != CURLUE_OK) {
        r.reason = "not a valid file:// URL";
        return r;
    }
    const std::string path = u.part(CURLUPART_PATH, CURLU_URLDECODE);
    if (path.empty() || path.find('\0') != std::string::npos) {
        r.reason = "not a valid file:// path";
        return r;
    }
    try {
        fs::OpenedFile f = fs::open_untrusted(path);
        BodyPipeline body(req);
        body.restart();
        if (req.encoding == BodyEncoding::Identity && static_cast<std::uint64_t>(f.st.st_size) > req.max_bytes) {
            r.outcome = FetchOutcome::TooLarge;
            r.reason = fmt::format("larger than its cap of {} bytes", req.max_bytes);
            return r;
        }
        const auto buf = std::make_unique_for_overwrite<unsigned char[]>(kFileChunk);
        for (;;) {
            const ssize_t n = ::read(f.fd.get(), buf.get(), kFileChunk);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw fs::errno_error("read");
            }
            if (n == 0 || !body.feed(buf.get(), static_cast<std::size_t>(n))) break;
        }
        return finish_body(body, std::move(r));
    } catch (const fs::NotRegularFile& e) {
        r.outcome = e.kind() == fs::FileKind::Missing ? FetchOutcome::NotFound : FetchOutcome::Failed;
        r.reason = e.what();
    } catch (const std::exception& e) {
        r.reason = one_line(e.what());
    }
    return r;
}

bool retryable(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return true;
    default: return false;
    }
}
bool retryable(long status) { return status == 408 || status == 429 || (status >= 500 && status <= 599); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

bool header_is(std::string_view line, std::string_view name) {
    if (line.size() <= name.size() || line[name.size()] != ':') return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = line[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != name[i]) return false;
    }
    return true;
}

std::optional<std::string> proxy_for(const std::map<std::string, std::string>& proxies, const ParsedUrl& u) {
    for (const std::string& key : {u.scheme + "://" + u.host, u.scheme, "all://" + u.host, std::string("all")})
        if (auto it = proxies.find(key); it != proxies.end()) return it->second;
    return std::nullopt;
}

// One http(s) request across its attempts.
struct Transfer {
    enum class Abort { None, Redirect, ErrorBody };

    Transfer(std::size_t index_, const FetchRequest& req_, ParsedUrl url_)
        : index(index_), req(req_), url(std::move(url_)), secrets(secrets_of(url)), body(req_) {}

    std::size_t index;
    const FetchRequest& req;
    ParsedUrl url;
    std::vector<std::string> secrets;
    BodyPipeline body;
    curl::Easy easy;
    curl::Slist headers;
    std::optional<curl::Attachment> attached;  // after `easy`: removed before it is cleaned up
    char errbuf[CURL_ERROR_SIZE] = {};

    // Per attempt, from the response being received.
    long status = 0;
    std::string etag, last_modified;
    Abort abort = Abort::None;
    std::string abort_reason;
    std::size_t discarded = 0;

    unsigned attempts = 0;
    Clock::time_point retry_at{};

    void restart() {
        body.restart();
        status = 0;
        etag.clear();
        last_modified.clear();
        abort = Abort::None;
        abort_reason.clear();
        discarded = 0;
        errbuf[0] = '\0';
        ++attempts;
    }

    // A Location header on a 3xx: the redirect must not go from https to
    // anything else, nor carry credentials over plain http, nor, with
    // same_origin_only, go to another origin.
    bool redirect_allowed(std::string_view location) {
        const std::string current = easy.info<char*>(CURLINFO_EFFECTIVE_URL, "CURLINFO_EFFECTIVE_URL");
        curl::Url u;
        if (u.parse(current, 0) != CURLUE_OK ||
            u.parse(std::string(location), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
            abort_reason = "redirect to an unreadable location refused";
            return false;
        }
        const std::string target = u.part(CURLUPART_URL);
        const std::optional<ParsedUrl> to = parse_url(target);
        if (!to) {
            abort_reason = "redirect to an unreadable location refused";
            return false;
        }
        if (url.scheme == "https" && to->scheme != "https") {
            abort_reason = fmt::format("redirect from https to {} refused ({})", to->scheme, redact_url(target));
            return false;
        }
        if (to->scheme == "http" && url_has_credentials(target)) {
            abort_reason = fmt::format("redirect to plain http with credentials in the URL refused ({})",
                                       redact_url(target));
            return false;
        }
        if (req.same_origin_only && to->origin() != url.origin()) {
            abort_reason = fmt::format("redirect to another origin refused ({})", redact_url(target));
            return false;
        }
        return true;
    }
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) noexcept {
    auto& t = *static_cast<Transfer*>(user);
    const std::size_t len = size * n;
    try {
        const std::string_view line(data, len);
        if (line.starts_with("HTTP/")) {
            // A new response (after a redirect): its headers replace the last.
            t.status = 0;
            t.etag.clear();
            t.last_modified.clear();
            const std::size_t sp = line.find(' ');
            if (sp != std::string_view::npos && line.size() >= sp + 4) {
                long code = 0;
                for (char c : line.substr(sp + 1, 3)) code = c >= '0' && c <= '9' ? code * 10 + (c - '0') : -1000;
                t.status = code;
            }
        } else if (header_is(line, "etag")) {
            t.etag = one_line(std::string(trim(line.substr(5))));
        } else if (header_is(line, "last-modified")) {
            t.last_modified = one_line(std::string(trim(line.substr(14))));
        } else if (t.status >= 300 && t.status <= 399 && header_is(line, "location")) {
            if (!t.redirect_allowed(trim(line.substr(9)))) {
                t.abort = Transfer::Abort::Redirect;
                return 0;
            }
        }
        return len;
    } catch (const std::exception& e) {
        t.abort = Transfer::Abort::Redirect;
        t.abort_reason = one_line(e.what());
        return 0;
    }
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) noexcept {
    auto& t = *static_cast<Transfer*>(user);
    const std::size_t len = size * n;
    if (t.status != 200) {
        // An error page: read and dropped (bounded); its status decides.
        t.discarded += len;
        if (t.discarded > kErrorBodyCap) {
            t.abort = Transfer::Abort::ErrorBody;
            return 0;
        }
        return len;
    }
    return t.body.feed(reinterpret_cast<const unsigned char*>(data), len) ? len : 0;
}

}  // namespace

struct Fetcher::Impl {
    TransportOptions opt;
    curl::Multi multi;

    explicit Impl(TransportOptions o) : opt(std::move(o)) {
        if (opt.parallel == 0) opt.parallel = 1;
        multi.set(CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(opt.parallel), "CURLMOPT_MAX_TOTAL_CONNECTIONS");
        multi.set(CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(opt.parallel), "CURLMOPT_MAX_HOST_CONNECTIONS");
        multi.set(CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX), "CURLMOPT_PIPELINING");
    }

    void configure(Transfer& t) const {
        curl::Easy& e = t.easy;
        e.set(CURLOPT_PRIVATE, static_cast<void*>(&t), "CURLOPT_PRIVATE");
        e.set_str(CURLOPT_URL, t.req.url, "CURLOPT_URL");
        e.set(CURLOPT_ERRORBUFFER, t.errbuf, "CURLOPT_ERRORBUFFER");
        e.set(CURLOPT_NOSIGNAL, 1L, "CURLOPT_NOSIGNAL");
        e.set(CURLOPT_PROTOCOLS_STR, "http,https", "CURLOPT_PROTOCOLS_STR");
        e.set(CURLOPT_REDIR_PROTOCOLS_STR, t.url.scheme == "https" ? "https" : "http,https",
              "CURLOPT_REDIR_PROTOCOLS_STR");
        e.set(CURLOPT_FOLLOWLOCATION, 1L, "CURLOPT_FOLLOWLOCATION");
        e.set(CURLOPT_MAXREDIRS, kMaxRedirects, "CURLOPT_MAXREDIRS");
        e.set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS), "CURLOPT_HTTP_VERSION");
        e.set(CURLOPT_PIPEWAIT, 1L, "CURLOPT_PIPEWAIT");
        e.set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt.connect_timeout.count()), "CURLOPT_CONNECTTIMEOUT_MS");
        e.set(CURLOPT_LOW_SPEED_LIMIT, opt.low_speed_limit, "CURLOPT_LOW_SPEED_LIMIT");
        e.set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(opt.low_speed_time.count()), "CURLOPT_LOW_SPEED_TIME");
        if (t.body.raw_cap() > 0)
            e.set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t.body.raw_cap()), "CURLOPT_MAXFILESIZE_LARGE");
        e.set(CURLOPT_WRITEFUNCTION, &on_body, "CURLOPT_WRITEFUNCTION");
        e.set(CURLOPT_WRITEDATA, static_cast<void*>(&t), "CURLOPT_WRITEDATA");
        e.set(CURLOPT_HEADERFUNCTION, &on_header, "CURLOPT_HEADERFUNCTION");
        e.set(CURLOPT_HEADERDATA, static_cast<void*>(&t), "CURLOPT_HEADERDATA");
        e.set_str(CURLOPT_USERAGENT, "condaguard", "CURLOPT_USERAGENT");
        if (t.req.if_none_match) t.headers.append("If-None-Match: " + *t.req.if_none_match);
        if (t.req.if_modified_since) t.headers.append("If-Modified-Since: " + *t.req.if_modified_since);
        if (t.headers.get() != nullptr) e.set(CURLOPT_HTTPHEADER, t.headers.get(), "CURLOPT_HTTPHEADER");
        const long verify = opt.verify_tls ? 1L : 0L;
        e.set(CURLOPT_SSL_VERIFYPEER, verify, "CURLOPT_SSL_VERIFYPEER");
        e.set(CURLOPT_SSL_VERIFYHOST, opt.verify_tls ? 2L : 0L, "CURLOPT_SSL_VERIFYHOST");
        e.set(CURLOPT_PROXY_SSL_VERIFYPEER, verify, "CURLOPT_PROXY_SSL_VERIFYPEER");
        e.set(CURLOPT_PROXY_SSL_VERIFYHOST, opt.verify_tls ? 2L : 0L, "CURLOPT_PROXY_SSL_VERIFYHOST");
        if (opt.ca_bundle) {
            std::error_code ec;
            if (std::filesystem::is_directory(*opt.ca_bundle, ec))
                e.set_str(CURLOPT_CAPATH, opt.ca_bundle->string(), "CURLOPT_CAPATH");
            else
                e.set_str(CURLOPT_CAINFO, opt.ca_bundle->string(), "CURLOPT_CAINFO");
        }
        if (opt.client_cert) e.set_str(CURLOPT_SSLCERT, opt.client_cert->string(), "CURLOPT_SSLCERT");
        if (opt.client_key) e.set_str(CURLOPT_SSLKEY, opt.client_key->string(), "CURLOPT_SSLKEY");
        // "" switches libcurl's reading of *_proxy environment variables off.
        e.set_str(CURLOPT_PROXY, proxy_for(opt.proxies, t.url).value_or(""), "CURLOPT_PROXY");
    }
};

Fetcher::Fetcher(TransportOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Fetcher::~Fetcher() = default;
Fetcher::Fetcher(Fetcher&&) noexcept = default;
Fetcher& Fetcher::operator=(Fetcher&&) noexcept = default;

std::vector<FetchResponse> Fetcher::fetch(std::span<const FetchRequest> requests,
                                          const std::function<void(const FetchProgress&)>& progress,
                                          const std::function<void(std::size_t, const FetchResponse&)>& on_done) {
    const TransportOptions& opt = impl_->opt;
    std::vector<FetchResponse> out(requests.size());
    std::vector<std::unique_ptr<Transfer>> transfers(requests.size());
    std::deque<std::size_t> pending;
    std::vector<Transfer*> waiting;  // between attempts
    std::size_t active = 0;
    FetchProgress prog{.files_total = requests.size()};
    std::uint64_t finished_bytes = 0;
    for (const FetchRequest& r : requests) prog.bytes_expected += r.max_bytes;

    auto done = [&](std::size_t i, FetchResponse r) {
        finished_bytes += r.outcome == FetchOutcome::Ok ? r.bytes : 0;
        out[i] = std::move(r);
        ++prog.files_done;
        if (on_done) on_done(i, out[i]);
    };
    auto refuse = [&](std::size_t i, std::string reason) {
        done(i, FetchResponse{.outcome = FetchOutcome::Failed, .reason = std::move(reason)});
    };

    for (std::size_t i = 0; i < requests.size(); ++i) {
        const FetchRequest& r = requests[i];
        if (r.sink_fd < 0) {
            refuse(i, "no file to write the download to");
            continue;
        }
        const std::size_t sep = r.url.find("://");
        const std::string scheme = lower(r.url.substr(0, sep == std::string::npos ? 0 : sep));
        if (scheme == "file") {
            done(i, fetch_file(r));
            continue;
        }
        if (scheme != "http" && scheme != "https") {
            refuse(i, "not an http, https or file URL");
            continue;
        }
        std::optional<ParsedUrl> parsed = parse_url(r.url);
        if (!parsed) {
            refuse(i, "not a valid URL");
            continue;
        }
        if (parsed->scheme == "http" && url_has_credentials(r.url)) {
            refuse(i, "credentials in the URL are never sent over plain http");
            continue;
        }
        for (const auto* h : {&r.if_none_match, &r.if_modified_since}) {
            if (*h && h->value().find_first_of("\r\n") != std::string::npos) parsed.reset();
        }
        if (!parsed) {
            refuse(i, "a conditional request header holds a line break");
            continue;
        }
        transfers[i] = std::make_unique<Transfer>(i, r, std::move(*parsed));
        impl_->configure(*transfers[i]);
        pending.push_back(i);
    }

    auto start = [&](Transfer& t) {
        try {
            t.restart();
        } catch (const std::exception& e) {
            done(t.index, FetchResponse{.outcome = FetchOutcome::Failed, .reason = one_line(e.what()),
                                        .attempts = t.attempts});
            transfers[t.index].reset();
            return;
        }
        t.attached.emplace(impl_->multi, t.easy);
        ++active;
    };

    // Decides the attempt that just ended: a response, or another attempt.
    auto settle = [&](Transfer& t, CURLcode rc) {
        const long status = t.easy.info<long>(CURLINFO_RESPONSE_CODE, "CURLINFO_RESPONSE_CODE");
        FetchResponse r{.outcome = FetchOutcome::Failed, .http_status = status, .etag = t.etag,
                        .last_modified = t.last_modified, .attempts = t.attempts};
        bool again = false;
        if (t.body.stop() == BodyPipeline::Stop::TooLarge || rc == CURLE_FILESIZE_EXCEEDED) {
            r.outcome = FetchOutcome::TooLarge;
            r.reason = t.body.stop() == BodyPipeline::Stop::TooLarge
                           ? t.body.stop_reason()
                           : fmt::format("announced as larger than its cap of {} bytes", t.req.max_bytes);
        } else if (t.body.stop() != BodyPipeline::Stop::None) {
            r.reason = t.body.stop_reason();
        } else if (t.abort == Transfer::Abort::Redirect) {
            r.reason = redact_text(t.abort_reason, t.secrets);
        } else if (rc != CURLE_OK && t.abort != Transfer::Abort::ErrorBody) {
            again = retryable(rc);
            r.reason = redact_text(t.errbuf[0] != '\0' ? t.errbuf : curl_easy_strerror(rc), t.secrets);
        } else if (status == 200 && rc == CURLE_OK && t.status == 200) {
            r = finish_body(t.body, std::move(r));
        } else if (status == 304 && (t.req.if_none_match || t.req.if_modified_since)) {
            r.outcome = FetchOutcome::NotModified;
        } else if (status == 404 || status == 410) {
            r.outcome = FetchOutcome::NotFound;
            r.reason = fmt::format("HTTP {}", status);
        } else {
            again = retryable(status);
            r.reason = fmt::format("HTTP {}", status);
        }
        if (again && t.attempts <= opt.max_retries) {
            t.retry_at = Clock::now() + opt.backoff * (1LL << std::min(t.attempts - 1, 20U));
            waiting.push_back(&t);
            return;
        }
        if (r.outcome != FetchOutcome::Ok) {
            r.bytes = 0;
            if (r.attempts > 1) r.reason += fmt::format(" ({} attempts)", r.attempts);
        }
        const std::size_t i = t.index;
        transfers[i].reset();
        done(i, std::move(r));
    };

    Clock::time_point last_report{};
    auto report = [&](bool last) {
        if (!progress) return;
        const auto now = Clock::now();
        if (!last && now - last_report < kProgressInterval) return;
        last_report = now;
        prog.bytes_done = finished_bytes;
        for (const auto& t : transfers)
            if (t) prog.bytes_done += t->body.bytes();
        progress(prog);
    };

    while (!pending.empty() || active > 0 || !waiting.empty()) {
        const auto now = Clock::now();
        // Transfers due for another attempt go first, then new ones.
        for (auto it = waiting.begin(); it != waiting.end() && active < opt.parallel;) {
            if ((*it)->retry_at <= now) {
                Transfer* t = *it;
                it = waiting.erase(it);
                start(*t);
            } else {
                ++it;
            }
        }
        while (active < opt.parallel && !pending.empty()) {
            const std::size_t i = pending.front();
            pending.pop_front();
            start(*transfers[i]);
        }

        int running = 0;
        curl::check(curl_multi_perform(impl_->multi.get(), &running), "curl_multi_perform");
        std::size_t finished = 0;
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(impl_->multi.get(), &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            const CURLcode rc = msg->data.result;
            char* priv = nullptr;
            curl::check(curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv), "CURLINFO_PRIVATE");
            Transfer& t = *reinterpret_cast<Transfer*>(priv);
            t.attached.reset();  // msg is invalid from here on
            --active;
            ++finished;
            settle(t, rc);
        }
        report(false);
        if (finished > 0) continue;

        long wait_ms = 1000;
        for (const Transfer* t : waiting) {
            const auto until = std::chrono::ceil<std::chrono::milliseconds>(t->retry_at - Clock::now()).count();
            wait_ms = std::clamp<long>(static_cast<long>(until), 0, wait_ms);
        }
        if (active > 0 || wait_ms > 0)
            curl::check(curl_multi_poll(impl_->multi.get(), nullptr, 0, static_cast<int>(wait_ms), nullptr),
                        "curl_multi_poll");
    }
    report(true);
    return out;
}

}  // namespace condaguard
