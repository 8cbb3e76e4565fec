#include <condaguard/install/explicit.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/text.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace condaguard {

namespace {

constexpr std::size_t max_explicit_bytes = 16 << 20;

bool is_lower_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool has_scheme(std::string_view s) {
    const auto colon = s.find("://");
    if (colon == std::string_view::npos || colon == 0) return false;
    return std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

}  // namespace

PackageUrl parse_package_url(std::string_view text, const std::filesystem::path& cwd) {
    PackageUrl out;
    std::string_view body = text;
    // The checksum suffix (conda's pattern: #<32 hex>, #<64 hex>, #sha256:<64 hex>).
    if (const auto hash = body.rfind('#'); hash != std::string_view::npos) {
        std::string_view h = body.substr(hash + 1);
        body = body.substr(0, hash);
        if (h.starts_with("sha256:")) h.remove_prefix(7);
        if (h.size() == 64 && is_lower_hex(h)) {
            out.sha256 = std::string(h);
        } else if (h.size() == 32 && is_lower_hex(h)) {
            out.md5 = std::string(h);
        } else {
            throw ExplicitError(fmt::format("{}: the part after '#' is not an md5 or sha256 in lowercase hex",
                                            condaguard::quoted(text)));
        }
    }
    if (body.find_first_of(" \t\r\n?") != std::string_view::npos || body.empty())
        throw ExplicitError(fmt::format("{} is not a package URL or path", condaguard::quoted(text)));
    if (has_scheme(body)) {
        out.url = std::string(body);
    } else {
        std::filesystem::path p(body);
        if (p.is_relative()) p = cwd / p;
        out.url = "file://" + p.lexically_normal().string();
    }
    const auto scheme_end = out.url.find("://") + 3;
    const auto last = out.url.rfind('/');
    const auto prev = last == std::string::npos || last <= scheme_end ? std::string::npos : out.url.rfind('/', last - 1);
    if (prev == std::string::npos || prev < scheme_end)
        throw ExplicitError(fmt::format("{}: a package URL ends in CHANNEL/SUBDIR/FILE", condaguard::quoted(text)));
    out.fn = out.url.substr(last + 1);
    out.subdir = out.url.substr(prev + 1, last - prev - 1);
    out.channel_url = out.url.substr(0, prev);
    auto name = parse_package_file_name(out.fn);
    if (!name) throw ExplicitError(fmt::format("{}: {} is not a conda package file name", condaguard::quoted(text), condaguard::quoted(out.fn)));
    if (out.subdir.empty() || out.subdir == "." || out.subdir == "..")
        throw ExplicitError(fmt::format("{}: no subdir before the file name", condaguard::quoted(text)));
    out.name = std::move(*name);
    return out;
}

std::vector<PackageUrl> parse_explicit(std::string_view text, const std::filesystem::path& cwd) {
    std::vector<PackageUrl> out;
    bool is_explicit = false;
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const auto nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.empty() || line.front() == '#') continue;
        if (line == "@EXPLICIT") {
            is_explicit = true;
            continue;
        }
        try {
            out.push_back(parse_package_url(line, cwd));
        } catch (const ExplicitError& e) {
            throw ExplicitError(fmt::format("line {}: {}", line_no, e.what()));
        }
    }
    if (!is_explicit) throw ExplicitError("not an explicit file (no line '@EXPLICIT')");
    return out;
}

std::vector<PackageUrl> read_explicit_file(const std::filesystem::path& file, const std::filesystem::path& cwd) {
    const fs::OpenedFile f = fs::open_untrusted(file);
    auto read = fs::read_capped(f.fd.get(), max_explicit_bytes, file.string());
    if (read.too_big) throw ExplicitError(fmt::format("over {} bytes", max_explicit_bytes));
    return parse_explicit(read.data, cwd);
}

}  // namespace condaguard
