#include <condaguard/sys/time.hpp>

#include <fmt/format.h>

#include <charconv>
#include <cstdint>

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

TimePoint system_now() { return std::chrono::time_point_cast<Seconds>(Clock::now()); }

}  // namespace condaguard
