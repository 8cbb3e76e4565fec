#include <condaguard/sys/url.hpp>

#include <algorithm>
#include <cctype>

namespace condaguard {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool is_token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// The first "/t/TOKEN" in `path`: its position and the token's length.
std::optional<std::pair<std::size_t, std::size_t>> find_token(std::string_view path) {
    const std::size_t at = path.find("/t/");
    if (at == std::string_view::npos) return std::nullopt;
    std::size_t end = at + 3;
    while (end < path.size() && is_token_char(path[end])) ++end;
    return std::make_pair(at, end - (at + 3));
}

bool valid_scheme(std::string_view s) {
    if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '+' || c == '-' || c == '.'; });
}

}  // namespace

std::string Url::without_credentials() const { return scheme + "://" + host + path; }

std::string Url::with_credentials() const {
    std::string out = scheme + "://";
    if (!user_info.empty()) out += user_info + "@";
    out += host;
    if (token) out += "/t/" + *token;
    return out + path;
}

std::optional<Url> parse_url(std::string_view s) {
    const std::size_t sep = s.find("://");
    if (sep == std::string_view::npos || !valid_scheme(s.substr(0, sep))) return std::nullopt;
    Url u;
    u.scheme = lower(s.substr(0, sep));
    std::string_view rest = s.substr(sep + 3);
    rest = rest.substr(0, std::min(rest.find('#'), rest.size()));
    rest = rest.substr(0, std::min(rest.find('?'), rest.size()));
    const std::size_t slash = std::min(rest.find('/'), rest.size());
    std::string_view authority = rest.substr(0, slash);
    std::string path(rest.substr(slash));
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
        u.user_info = std::string(authority.substr(0, at));
        authority.remove_prefix(at + 1);
    }
    u.host = lower(authority);
    if (u.host.empty() && u.scheme != "file") return std::nullopt;
    if (auto t = find_token(path)) {
        u.token = path.substr(t->first + 3, t->second);
        path.erase(t->first, 3 + t->second);
    }
    while (!path.empty() && path.back() == '/') path.pop_back();
    u.path = std::move(path);
    return u;
}

std::string mask_tokens(std::string_view s) {
    std::string out;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t t = s.find("/t/", pos);
        if (t == std::string_view::npos) break;
        out.append(s.substr(pos, t + 3 - pos));
        std::size_t end = t + 3;
        while (end < s.size() && is_token_char(s[end])) ++end;
        if (end > t + 3) out += "<TOKEN>";
        pos = end;
    }
    out.append(s.substr(pos));
    return out;
}

std::string redact_url(std::string_view url) {
    std::string out;
    std::string_view rest = url;
    const std::size_t sep = url.find("://");
    if (sep != std::string_view::npos && valid_scheme(url.substr(0, sep))) {
        out.append(url.substr(0, sep + 3));
        rest = url.substr(sep + 3);
        const std::size_t auth_end = rest.find_first_of("/?#");
        std::string_view authority = rest.substr(0, auth_end);
        if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
        out.append(authority);
        rest = auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);
    }
    if (const std::size_t q = rest.find_first_of("?#"); q != std::string_view::npos) rest = rest.substr(0, q);
    out += mask_tokens(rest);
    // One line: control bytes become spaces.
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return out;
}

bool url_has_credentials(std::string_view url) {
    const std::size_t sep = url.find("://");
    std::string_view rest = sep == std::string_view::npos ? url : url.substr(sep + 3);
    const std::size_t auth_end = rest.find_first_of("/?#");
    if (rest.substr(0, auth_end).find('@') != std::string_view::npos) return true;
    if (auth_end == std::string_view::npos) return false;
    std::string_view path = rest.substr(auth_end);
    path = path.substr(0, path.find_first_of("?#"));
    return path.find("/t/") != std::string_view::npos;
}

bool url_has_prefix(std::string_view url, std::string_view prefix) {
    const auto u = parse_url(url);
    const auto p = parse_url(prefix);
    if (!u || !p) return false;
    if (u->scheme != p->scheme || u->host != p->host) return false;
    if (p->path.empty()) return true;
    return u->path == p->path || (u->path.starts_with(p->path) && u->path[p->path.size()] == '/');
}

}  // namespace condaguard
