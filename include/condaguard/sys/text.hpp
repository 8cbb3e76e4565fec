// Outside text inside a reason: a reason is one line of plain text, and
// what() is a C string, so names from files are quoted with every control
// byte (NUL included), quote and backslash shown as \xNN.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace condaguard {

// 'name', escaped; names longer than `max_shown` bytes are cut with "...".
std::string quoted(std::string_view raw, std::size_t max_shown = 200);

}  // namespace condaguard
