// Channel URLs: their parts, credentials kept apart, and the one redaction
// every printed or logged URL goes through.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace condaguard {

// scheme://[user:pass@]host[:port][/path][?query][#fragment], with an
// anaconda token (the first "/t/TOKEN" in the path, TOKEN of [A-Za-z0-9-])
// taken out of the path as conda does (conda/common/url.py).
struct Url {
    std::string scheme;     // lowercase
    std::string user_info;  // "user:pass", empty when none
    std::string host;       // lowercase, with ":port" when given
    std::string path;       // "" or "/a/b", without the token, query, fragment or a trailing '/'
    std::optional<std::string> token;

    // scheme://host/path: no credentials, no token.
    std::string without_credentials() const;
    // scheme://user:pass@host/t/TOKEN/path: what is sent (never printed).
    std::string with_credentials() const;
    bool has_credentials() const noexcept { return !user_info.empty() || token.has_value(); }
};

// nullopt when `s` has no "scheme://" or an empty host (file:// URLs have an
// empty host and are accepted).
std::optional<Url> parse_url(std::string_view s);

// `url` fit for a message or a log, one line: every "/t/TOKEN" becomes
// "/t/<TOKEN>", "user:pass@" is removed, a query string or fragment is
// dropped, and control bytes become spaces (conda's mask_anaconda_token and
// remove_auth, plus queries: conda-formats §7.3). The one redaction: every
// URL printed, logged or written anywhere goes through it.
std::string redact_url(std::string_view url);

// True when the URL carries credentials: user or password, or a /t/TOKEN
// segment (conda's token regex /t/([a-zA-Z0-9-]*)).
bool url_has_credentials(std::string_view url);

// Every "/t/TOKEN" in free text becomes "/t/<TOKEN>".
std::string mask_tokens(std::string_view text);

// Whether `url` is `prefix` or lies under it on a path-segment boundary
// (https://a.example/chan is under https://a.example, not under
// https://a.example/ch). Both without credentials; scheme and host compare
// without regard to case; a trailing '/' on either is ignored.
bool url_has_prefix(std::string_view url, std::string_view prefix);

}  // namespace condaguard
