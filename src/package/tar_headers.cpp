#include "tar_headers.hpp"

#include <condaguard/package/archive.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <condaguard/sys/text.hpp>

#include <array>
#include <cstring>

namespace condaguard::detail {

std::string member_name(std::string_view raw) { return quoted(raw); }

namespace {

constexpr std::size_t block = 512;
// Sizes past this are refused before any arithmetic on them.
constexpr std::uint64_t max_member_size = std::uint64_t{1} << 62;

std::uint64_t padded(std::uint64_t n) { return (n + block - 1) / block * block; }

std::string_view field(std::string_view h, std::size_t off, std::size_t len) { return h.substr(off, len); }

// Up to the first NUL, as both readers cut name fields.
std::string_view nts(std::string_view f) { return f.substr(0, std::min(f.find('\0'), f.size())); }

// A numeric header field read the way both readers agree on: base-256
// (first byte 0x80 positive, 0xff negative), or octal digits with spaces
// only before and after them, up to the first NUL (empty is 0). nullopt for
// anything else (Python's tarfile would end the archive there, libarchive
// would read on). `negative` is set for a base-256 negative number.
std::optional<std::uint64_t> number(std::string_view f, bool& negative) {
    negative = false;
    const auto first = static_cast<unsigned char>(f[0]);
    if (first == 0x80 || first == 0xff) {
        negative = first == 0xff;
        std::uint64_t v = 0;
        for (std::size_t i = 1; i < f.size(); ++i) {
            if (v > (max_member_size >> 8)) return negative ? std::optional<std::uint64_t>(0) : std::nullopt;
            v = v << 8 | static_cast<unsigned char>(f[i]);
        }
        return v;
    }
    const std::string_view s = nts(f);
    std::size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    std::uint64_t v = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '7'; ++i) v = v << 3 | static_cast<std::uint64_t>(s[i] - '0');
    while (i < s.size() && s[i] == ' ') ++i;
    if (i != s.size()) return std::nullopt;
    return v;  // at most 12 octal digits: no overflow
}

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) return false;
            cp = cp << 6 | (d & 0x3f);
        }
        static constexpr std::array<std::uint32_t, 5> min_cp{0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

bool all_digits(std::string_view s, std::size_t max_len) {
    return !s.empty() && s.size() <= max_len && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A pax time: [-]digits[.digits].
bool pax_time(std::string_view s) {
    if (s.starts_with('-')) s.remove_prefix(1);
    const auto dot = s.find('.');
    if (dot == std::string_view::npos) return all_digits(s, 20);
    return all_digits(s.substr(0, dot), 20) && all_digits(s.substr(dot + 1), 20);
}

// The pax keywords both readers apply the same way (Python's tarfile
// ignores atime and ctime; the *.xattr.* families are attributes libarchive
// records and tarfile ignores, neither extracts with them).
bool allowed_keyword(std::string_view k) {
    static constexpr std::array<std::string_view, 10> plain{"path", "linkpath", "size",  "uid",   "gid",
                                                            "uname", "gname",   "mtime", "atime", "ctime"};
    if (std::find(plain.begin(), plain.end(), k) != plain.end()) return true;
    for (std::string_view prefix : {std::string_view("SCHILY.xattr."), std::string_view("LIBARCHIVE.xattr.")})
        if (k.starts_with(prefix) && k.size() > prefix.size()) return true;
    return false;
}

std::string type_name(char t) {
    const auto c = static_cast<unsigned char>(t);
    return c >= 0x21 && c < 0x7f ? fmt::format("'{}'", t) : fmt::format("0x{:02x}", c);
}

}  // namespace

void TarHeaderChecker::fail(const std::string& what) const { throw CorruptPackage(where_ + what); }

std::optional<CheckedMember> TarHeaderChecker::next_member() {
    if (members_.empty()) return std::nullopt;
    CheckedMember m = std::move(members_.front());
    members_.pop_front();
    return m;
}

void TarHeaderChecker::finish() const {
    if (state_ == State::Ended) return;
    if (state_ != State::Header || !block_.empty() || any_extension_)
        fail("tar stream ends inside a member or its headers");
}

void TarHeaderChecker::feed(const unsigned char* data, std::size_t n) {
    while (n > 0) {
        switch (state_) {
        case State::Ended: return;  // both readers stop at the end-of-archive block
        case State::Data: {
            const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, n));
            skip_ -= take, data += take, n -= take, offset_ += take;
            if (skip_ == 0) state_ = State::Header;
            break;
        }
        case State::Header:
        case State::Extension: {
            if (block_.empty()) want_ = state_ == State::Header ? block : padded(ext_size_);
            const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(want_ - block_.size(), n));
            block_.append(reinterpret_cast<const char*>(data), take);
            data += take, n -= take;
            if (block_.size() < want_) break;
            if (state_ == State::Header)
                header_block();
            else
                extension_done();
            offset_ += want_;
            block_.clear();
            break;
        }
        }
    }
}

void TarHeaderChecker::header_block() {
    const std::string_view h = block_;
    const std::string at = fmt::format("tar header at offset {}", offset_);
    if (std::all_of(h.begin(), h.end(), [](char c) { return c == '\0'; })) {
        if (any_extension_) fail(at + " ends the archive right after an extension header");
        state_ = State::Ended;
        return;
    }
    bool negative = false;
    const auto sum = number(field(h, 148, 8), negative);
    std::uint64_t unsigned_sum = 0;
    std::int64_t signed_sum = 0;
    for (std::size_t i = 0; i < block; ++i) {
        const char c = i >= 148 && i < 156 ? ' ' : h[i];
        unsigned_sum += static_cast<unsigned char>(c);
        signed_sum += static_cast<signed char>(c);
    }
    if (!sum || negative || (*sum != unsigned_sum && static_cast<std::int64_t>(*sum) != signed_sum))
        fail(at + " has a bad checksum");
    for (auto [off, len, what] : {std::tuple{100, 8, "mode"}, {108, 8, "uid"}, {116, 8, "gid"}, {136, 12, "mtime"},
                                  {329, 8, "devmajor"}, {337, 8, "devminor"}})
        if (!number(field(h, static_cast<std::size_t>(off), static_cast<std::size_t>(len)), negative))
            fail(fmt::format("{} has a malformed {} field", at, what));
    const auto header_size = number(field(h, 124, 12), negative);
    if (!header_size || negative || *header_size > max_member_size) fail(at + " has a malformed size field");

    // Python's tarfile reads the ustar prefix field from every header;
    // libarchive only from POSIX ustar ones ("ustar\0").
    const bool posix_ustar = field(h, 257, 6) == std::string_view("ustar\0", 6);
    if (!posix_ustar && h[345] != '\0') fail(at + " has a ustar prefix but is not a ustar header");
    const std::string_view name = nts(field(h, 0, 100));
    const std::string_view prefix = posix_ustar ? nts(field(h, 345, 155)) : std::string_view();
    std::string header_name = prefix.empty() ? std::string(name) : fmt::format("{}/{}", prefix, name);

    const char type = h[156];
    switch (type) {
    case 'x':
    case 'L':
    case 'K': {
        const bool seen = type == 'x' ? pending_.pax : type == 'L' ? pending_.long_name.has_value()
                                                                    : pending_.long_link.has_value();
        if (seen) fail(fmt::format("{} is a second {} header for one member", at, type_name(type)));
        if (*header_size > max_tar_extension_bytes)
            fail(fmt::format("{} ({} header) is larger than {} bytes", at, type_name(type), max_tar_extension_bytes));
        if (type == 'x') pending_.pax = true;
        any_extension_ = true;
        ext_type_ = type;
        ext_size_ = *header_size;
        ext_offset_ = offset_;
        state_ = State::Extension;
        if (ext_size_ == 0) {
            // No blocks to collect: done at once.
            block_.clear();
            extension_done();
            state_ = State::Header;
        }
        return;
    }
    case 'g': fail(at + " is a pax global header (type 'g'), which is not allowed");
    case '0':
    case '\0':
    case '7':
    case '1':
    case '2':
    case '5': break;
    default:
        fail(fmt::format("member {} has type {}, which is not allowed", member_name(pending_.path.value_or(
                                                                             pending_.long_name.value_or(header_name))),
                         type_name(type)));
    }

    std::string effective = pending_.path ? *pending_.path : pending_.long_name ? *pending_.long_name : header_name;
    const std::string who = "member " + member_name(effective);
    if (!pending_.problem.empty()) fail(who + ": " + pending_.problem);
    if (pending_.path && pending_.long_name) fail(who + " has both a GNU long name and a pax path");
    if (pending_.linkpath && pending_.long_link) fail(who + " has both a GNU long link and a pax linkpath");
    const std::uint64_t size = pending_.size.value_or(*header_size);
    const bool regular = type == '0' || type == '\0' || type == '7';
    if (regular) {
        // A "file" whose name ends in '/' is a directory to one reader or the other.
        if (effective.ends_with('/') || (type == '\0' && name.ends_with('/')))
            fail(who + " is a file but its name ends with '/'");
    } else if (size != 0) {
        fail(fmt::format("{} of type {} has {} bytes of data", who, type_name(type), size));
    }
    members_.push_back({.name = std::move(effective), .size = size});
    pending_ = Pending{};
    any_extension_ = false;
    skip_ = padded(size);
    state_ = skip_ > 0 ? State::Data : State::Header;
}

void TarHeaderChecker::extension_done() {
    const std::string_view all = block_;
    const std::string_view body = all.substr(0, static_cast<std::size_t>(ext_size_));
    const std::string at = fmt::format("{} header at offset {}", type_name(ext_type_), ext_offset_);
    // Python reads an extension's padding too: it must be empty.
    if (all.find_first_not_of('\0', body.size()) != std::string_view::npos) fail(at + " has data in its padding");
    if (ext_type_ == 'x') {
        parse_pax(body);
    } else {
        const std::string_view text = nts(body);
        if (text.empty()) fail(at + " is empty");
        if (body.find_first_not_of('\0', text.size()) != std::string_view::npos)
            fail(at + " has bytes after its name");
        (ext_type_ == 'L' ? pending_.long_name : pending_.long_link) = std::string(text);
    }
    state_ = State::Header;
}

void TarHeaderChecker::parse_pax(std::string_view rec) {
    const std::string at = fmt::format("pax header at offset {}", ext_offset_);
    std::size_t pos = 0;
    while (pos < rec.size()) {
        // "LEN KEYWORD=VALUE\n", LEN counting the whole record.
        std::size_t i = pos;
        while (i < rec.size() && rec[i] >= '0' && rec[i] <= '9') ++i;
        if (i == pos || i - pos > 20 || i >= rec.size() || rec[i] != ' ')
            fail(fmt::format("{} has a malformed record at byte {}", at, pos));
        std::uint64_t len = 0;
        for (std::size_t k = pos; k < i; ++k) {
            len = len * 10 + static_cast<std::uint64_t>(rec[k] - '0');
            if (len > rec.size()) break;
        }
        if (len > rec.size() - pos || pos + len < i + 3 || rec[pos + len - 1] != '\n')
            fail(fmt::format("{} has a malformed record at byte {}", at, pos));
        const std::string_view kv = rec.substr(i + 1, pos + len - 1 - (i + 1));
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0)
            fail(fmt::format("{} has a malformed record at byte {}", at, pos));
        const std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
        pos += static_cast<std::size_t>(len);

        auto problem = [&](const std::string& p) {
            if (pending_.problem.empty()) pending_.problem = p;
        };
        const std::string k = member_name(key);
        // A repeated keyword is refused; the name shown is the last one
        // given, as Python's tarfile would take it.
        if (!pending_.keys.emplace(key).second) problem(fmt::format("pax keyword {} appears twice", k));
        if (!allowed_keyword(key)) {
            problem(fmt::format("pax keyword {} is not allowed", k));
            continue;
        }
        if (value.find('\0') != std::string_view::npos) {
            problem(fmt::format("pax keyword {} has a NUL byte in its value", k));
            continue;
        }
        if (key == "path" || key == "linkpath" || key == "uname" || key == "gname") {
            if (!valid_utf8(value)) problem(fmt::format("pax keyword {} is not UTF-8", k));
            if ((key == "path" || key == "linkpath") && value.empty()) problem(fmt::format("pax keyword {} is empty", k));
            if (key == "path") pending_.path = std::string(value);
            if (key == "linkpath") pending_.linkpath = std::string(value);
        } else if (key == "size" || key == "uid" || key == "gid") {
            if (!all_digits(value, 18)) {
                problem(fmt::format("pax keyword {} is not a number", k));
            } else if (key == "size") {
                std::uint64_t v = 0;
                for (char c : value) v = v * 10 + static_cast<std::uint64_t>(c - '0');
                if (v > max_member_size) problem(fmt::format("pax keyword {} is too large", k));
                pending_.size = v;
            }
        } else if (key == "mtime" || key == "atime" || key == "ctime") {
            if (!pax_time(value)) problem(fmt::format("pax keyword {} is not a time", k));
        }
    }
}

}  // namespace condaguard::detail
