#include <condaguard/guard.hpp>

#include "fs.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>

namespace condaguard {

std::string format_time(TimePoint t) {
    // Calendar arithmetic in seconds: exact for every year parse_time accepts
    // (a detour through the clock's nanoseconds would overflow past 2262).
    using namespace std::chrono;
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{t - day};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                       hms.minutes().count(), hms.seconds().count());
}

std::optional<TimePoint> parse_time(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SSZ
    if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return std::nullopt;
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        for (std::size_t i = pos; i < pos + len; ++i)
            if (s[i] < '0' || s[i] > '9') return false;
        return std::from_chars(s.data() + pos, s.data() + pos + len, out).ec == std::errc{};
    };
    int y, mo, d, h, mi, se;
    if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) || !num(17, 2, se))
        return std::nullopt;
    using namespace std::chrono;
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || se > 59) return std::nullopt;
    return time_point_cast<Seconds>(sys_days{ymd} + hours{h} + minutes{mi} + Seconds{se});
}

std::optional<Seconds> parse_duration(std::string_view s) {
    if (s.size() < 2) return std::nullopt;
    const char unit = s.back();
    s.remove_suffix(1);
    std::int64_t n = 0;
    for (char c : s)
        if (c < '0' || c > '9') return std::nullopt;
    if (std::from_chars(s.data(), s.data() + s.size(), n).ec != std::errc{} || n <= 0) return std::nullopt;
    std::int64_t mult;
    switch (unit) {
    case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    default: return std::nullopt;
    }
    if (n > std::int64_t{100} * 365 * 86400 / mult) return std::nullopt;  // at most about a century
    return Seconds{n * mult};
}

TimePoint now() { return std::chrono::time_point_cast<Seconds>(Clock::now()); }

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

// ------------------------------------------------------------------ state

std::filesystem::path StateStore::default_dir() {
    if (const char* d = std::getenv("CONDA_GUARD_STATE_DIR"); d != nullptr && *d != '\0') return d;
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') throw std::runtime_error("HOME is not set; use --state-dir");
    return std::filesystem::path(home) / ".conda" / "guard";
}

namespace {

constexpr int state_format = 1;

// Holds an exclusive flock on DIR/state.lock for a read-modify-write.
class StateLock {
public:
    explicit StateLock(const std::filesystem::path& dir) {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        ::chmod(dir.c_str(), 0700);
        fd_ = fs::open_raw(dir / "state.lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
        if (!fd_) throw fs::errno_error((dir / "state.lock").string());
        while (::flock(fd_.get(), LOCK_EX) != 0) {
            if (errno != EINTR) throw fs::errno_error("flock " + (dir / "state.lock").string());
        }
    }

private:
    fs::Fd fd_;
};

}  // namespace

nlohmann::json StateStore::load() const {
    const auto path = dir_ / "state.json";
    fs::Fd fd = fs::open_raw(path, O_RDONLY | O_NOFOLLOW);
    if (!fd) {
        if (errno == ENOENT) return {{"format", state_format}, {"channels", nlohmann::json::object()},
                                     {"locations", nlohmann::json::object()}};
        throw fs::errno_error(path.string());
    }
    auto r = fs::read_capped(fd.get(), 64 << 20, path.string());
    auto j = nlohmann::json::parse(r.data, nullptr, false);
    // A damaged state file must not silently reset rollback protection.
    if (r.too_big || j.is_discarded() || !j.is_object() || j.value("format", 0) != state_format ||
        !j.contains("channels") || !j["channels"].is_object() || !j.contains("locations") ||
        !j["locations"].is_object())
        throw std::runtime_error(path.string() + ": state file is damaged; inspect it or remove it with care");
    return j;
}

std::optional<SeenIndex> StateStore::seen(const std::string& channel, const std::string& subdir) const {
    const auto j = load();
    const auto& ch = j["channels"];
    if (!ch.contains(channel) || !ch[channel].contains(subdir)) return std::nullopt;
    const auto& e = ch[channel][subdir];
    return SeenIndex{e.value("version", std::int64_t{0}), e.value("sha256", ""), e.value("signed_at", "")};
}

std::optional<std::string> StateStore::channel_at(const std::string& location) const {
    const auto j = load();
    auto it = j["locations"].find(location);
    if (it == j["locations"].end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

void StateStore::record(const std::string& location, const std::string& channel, const std::string& subdir,
                        const SeenIndex& seen) {
    StateLock lock(dir_);
    auto j = load();
    auto& e = j["channels"][channel][subdir];
    if (!e.is_object() || e.value("version", std::int64_t{0}) <= seen.version)
        e = {{"version", seen.version}, {"sha256", seen.sha256}, {"signed_at", seen.signed_at}};
    j["locations"][location] = channel;
    fs::write_atomic(dir_ / "state.json", j.dump(2) + "\n", 0600, false);
}

bool StateStore::reset(const std::string& channel) {
    StateLock lock(dir_);
    auto j = load();
    bool known = j["channels"].erase(channel) > 0;
    for (auto it = j["locations"].begin(); it != j["locations"].end();) {
        if (*it == channel) {
            it = j["locations"].erase(it);
            known = true;
        } else {
            ++it;
        }
    }
    fs::write_atomic(dir_ / "state.json", j.dump(2) + "\n", 0600, false);
    return known;
}

nlohmann::json StateStore::dump() const { return load(); }

}  // namespace condaguard
