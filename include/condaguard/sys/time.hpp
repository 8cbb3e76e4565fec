// Times and durations: RFC 3339 UTC times in whole seconds, and the clock.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace condaguard {

using Clock = std::chrono::system_clock;
using Seconds = std::chrono::seconds;
using TimePoint = std::chrono::time_point<Clock, Seconds>;

// "2026-11-25T09:14:17Z" (RFC 3339, UTC, whole seconds).
std::string format_time(TimePoint t);
// Strict: exactly YYYY-MM-DDTHH:MM:SSZ; nullopt otherwise.
std::optional<TimePoint> parse_time(std::string_view s);
// "30d", "12h", "15m", "10s": a positive whole number and one unit; nullopt otherwise.
std::optional<Seconds> parse_duration(std::string_view s);
// The system clock, in whole seconds. Only the CLI calls it; the library takes the time it is given.
TimePoint system_now();

}  // namespace condaguard
