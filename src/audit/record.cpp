#include <condaguard/audit/record.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <set>
#include <stdexcept>
#include <utility>

namespace condaguard {

namespace {

constexpr std::array<std::pair<std::string_view, PathType>, 8> path_types{{
    {"hardlink", PathType::Hardlink},
    {"softlink", PathType::Softlink},
    {"directory", PathType::Directory},
    {"pyc_file", PathType::PycFile},
    {"unix_python_entry_point", PathType::UnixPythonEntryPoint},
    {"windows_python_entry_point_script", PathType::WindowsPythonEntryPointScript},
    {"windows_python_entry_point_exe", PathType::WindowsPythonEntryPointExe},
    {"linked_package_record", PathType::LinkedPackageRecord},
}};

std::runtime_error bad(const std::string& what) { return std::runtime_error(what); }

// A short, printable form of a value for messages.
std::string shown(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 80)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    if (s.size() > 80) out += "...";
    return out;
}

bool is_hex(std::string_view s, std::size_t len) {
    return s.size() == len && std::ranges::all_of(s, [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
           });
}

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::optional<std::string> opt_string(const nlohmann::json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) throw bad(fmt::format("\"{}\" is not a string", key));
    return it->get<std::string>();
}

std::string string_or_empty(const nlohmann::json& o, const char* key) { return opt_string(o, key).value_or(""); }

std::optional<std::string> opt_hex(const nlohmann::json& o, const char* key, std::size_t len, const std::string& where) {
    auto s = opt_string(o, key);
    if (!s || s->empty()) return std::nullopt;
    if (!is_hex(*s, len)) throw bad(fmt::format("{}\"{}\" is not {} hex digits", where, key, len));
    return lower(*s);
}

std::optional<std::uint64_t> opt_size(const nlohmann::json& o, const char* key, const std::string& where) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_unsigned()) throw bad(fmt::format("{}\"{}\" is not a non-negative integer", where, key));
    return it->get<std::uint64_t>();
}

}  // namespace

std::string_view to_string(PathType t) noexcept {
    for (const auto& [word, type] : path_types)
        if (type == t) return word;
    return "?";
}

bool is_generated(PathType t) noexcept {
    return t != PathType::Hardlink && t != PathType::Softlink && t != PathType::Directory;
}

bool is_safe_relative_path(std::string_view path) noexcept {
    if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) return false;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = path.find('/', start);
        const std::string_view seg = path.substr(start, end == std::string_view::npos ? path.npos : end - start);
        if (seg.empty() || seg == "." || seg == "..") return false;
        if (end == std::string_view::npos) return true;
        start = end + 1;
    }
}

std::vector<PathEntry> parse_paths(const nlohmann::json& doc) {
    if (!doc.is_object()) throw bad("paths is not a JSON object");
    auto version = doc.find("paths_version");
    if (version == doc.end() || !version->is_number_unsigned() || version->get<std::uint64_t>() != 1)
        throw bad("paths_version is not 1");
    auto paths = doc.find("paths");
    if (paths == doc.end() || !paths->is_array()) throw bad("\"paths\" is not a list");
    std::vector<PathEntry> out;
    out.reserve(paths->size());
    std::set<std::string, std::less<>> seen;
    for (const auto& e : *paths) {
        if (!e.is_object()) throw bad("an entry of \"paths\" is not an object");
        auto p = e.find("_path");
        if (p == e.end() || !p->is_string()) throw bad("an entry of \"paths\" has no \"_path\"");
        PathEntry entry{.path = p->get<std::string>()};
        const std::string where = fmt::format("entry {}: ", shown(entry.path));
        if (!is_safe_relative_path(entry.path)) throw bad(where + "\"_path\" is not a safe relative path");
        if (!seen.insert(entry.path).second) throw bad(where + "listed twice");
        const std::string type = string_or_empty(e, "path_type");
        auto t = std::ranges::find_if(path_types, [&](const auto& pt) { return pt.first == type; });
        if (t == path_types.end()) throw bad(where + fmt::format("unknown path_type \"{}\"", shown(type)));
        entry.type = t->second;
        entry.sha256 = opt_hex(e, "sha256", 64, where);
        entry.sha256_in_prefix = opt_hex(e, "sha256_in_prefix", 64, where);
        entry.size = opt_size(e, "size_in_bytes", where);
        entry.prefix_placeholder = opt_string(e, "prefix_placeholder");
        if (entry.prefix_placeholder && entry.prefix_placeholder->empty())
            throw bad(where + "empty prefix_placeholder");
        const std::string mode = string_or_empty(e, "file_mode");
        if (mode == "binary") {
            entry.file_mode = FileMode::Binary;
        } else if (mode.empty() || mode == "text") {
            entry.file_mode = FileMode::Text;
        } else {
            throw bad(where + fmt::format("unknown file_mode \"{}\"", shown(mode)));
        }
        if (auto nl = e.find("no_link"); nl != e.end() && !nl->is_null()) {
            if (!nl->is_boolean()) throw bad(where + "\"no_link\" is not a boolean");
            entry.no_link = nl->get<bool>();
        }
        out.push_back(std::move(entry));
    }
    return out;
}

PrefixRecord parse_prefix_record(const nlohmann::json& j) {
    if (!j.is_object()) throw bad("the record is not a JSON object");
    PrefixRecord r;
    r.name = string_or_empty(j, "name");
    r.version = string_or_empty(j, "version");
    r.build = string_or_empty(j, "build");
    if (r.name.empty() || r.version.empty() || r.build.empty()) throw bad("name, version or build is missing");
    r.url = string_or_empty(j, "url");
    r.channel = string_or_empty(j, "channel");
    r.subdir = string_or_empty(j, "subdir");
    r.fn = string_or_empty(j, "fn");
    if (r.fn.empty() && !r.url.empty()) {
        std::string_view u = r.url;
        if (auto hash = u.find('#'); hash != u.npos) u = u.substr(0, hash);
        r.fn = std::string(u.substr(u.rfind('/') + 1));
    }
    r.sha256 = opt_hex(j, "sha256", 64, "");
    r.md5 = opt_hex(j, "md5", 32, "");
    r.size = opt_size(j, "size", "");
    // "noarch": "python" | "generic"; older records wrote {"type": ...} or a boolean.
    if (auto na = j.find("noarch"); na != j.end()) {
        if (na->is_string()) {
            r.noarch = na->get<std::string>();
        } else if (na->is_object()) {
            r.noarch = opt_string(*na, "type");
        } else if (na->is_boolean()) {
            if (na->get<bool>()) r.noarch = "generic";
        } else if (!na->is_null()) {
            throw bad("\"noarch\" is neither a string nor an object");
        }
    }
    if (auto f = j.find("files"); f != j.end() && !f->is_null()) {
        if (!f->is_array()) throw bad("\"files\" is not a list");
        for (const auto& p : *f) {
            if (!p.is_string()) throw bad("an entry of \"files\" is not a string");
            if (!is_safe_relative_path(p.get<std::string>()))
                throw bad(fmt::format("\"files\" lists {}, not a safe relative path", shown(p.get<std::string>())));
            r.files.push_back(p.get<std::string>());
        }
    }
    if (auto pd = j.find("paths_data"); pd != j.end() && !pd->is_null()) r.paths = parse_paths(*pd);
    return r;
}

}  // namespace condaguard
