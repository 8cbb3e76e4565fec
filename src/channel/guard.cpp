#include <condaguard/channel/guard.hpp>

#include <condaguard/sys/fs.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>

namespace condaguard {

nlohmann::json Guard::to_json() const {
    return {{"channel", channel},
            {"subdir", subdir},
            {"version", version},
            {"signed_at", format_time(signed_at)},
            {"expires", format_time(expires)}};
}

Guard Guard::from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw std::invalid_argument("info.guard is not an object");
    auto str = [&](const char* k) {
        auto it = j.find(k);
        if (it == j.end()) throw std::invalid_argument(fmt::format("info.guard.{} is missing", k));
        if (!it->is_string() || it->get_ref<const std::string&>().empty())
            throw std::invalid_argument(fmt::format("info.guard.{} is not a non-empty string", k));
        return it->get<std::string>();
    };
    auto time = [&](const char* k) {
        const std::string s = str(k);
        auto t = parse_time(s);
        if (!t) throw std::invalid_argument(fmt::format("info.guard.{} '{}' is not an RFC 3339 UTC time", k, s));
        return *t;
    };
    Guard g;
    g.channel = str("channel");
    g.subdir = str("subdir");
    auto v = j.find("version");
    if (v == j.end()) throw std::invalid_argument("info.guard.version is missing");
    if (!v->is_number_integer() || v->get<std::int64_t>() < 1)
        throw std::invalid_argument("info.guard.version is not a positive integer");
    g.version = v->get<std::int64_t>();
    g.signed_at = time("signed_at");
    g.expires = time("expires");
    if (g.expires <= g.signed_at) throw std::invalid_argument("info.guard.expires is not after signed_at");
    return g;
}

}  // namespace condaguard
