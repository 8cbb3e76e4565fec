#include <condaguard/trust/key_name.hpp>

#include <condaguard/sys/text.hpp>

#include <fmt/format.h>

#include <stdexcept>

namespace condaguard {

namespace {
bool is_alnum_or_underscore(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}
}  // namespace

std::optional<std::string> KeyName::problem(std::string_view s) {
    if (s.empty()) return "key name is empty";
    if (s.size() > max_length)
        return fmt::format("key name is {} characters long (at most {})", s.size(), max_length);
    if (s.find('/') != s.npos || s.find('\\') != s.npos)
        return fmt::format("key name {} contains a path separator", quoted(s));
    if (s.front() == '.') return fmt::format("key name {} starts with a dot", quoted(s));
    if (s.find("..") != s.npos) return fmt::format("key name {} contains '..'", quoted(s));
    if (!is_alnum_or_underscore(s.front()))
        return fmt::format("key name {} must start with a letter, digit or '_'", quoted(s));
    for (char c : s) {
        if (!is_alnum_or_underscore(c) && c != '.' && c != '-')
            return fmt::format("key name {} contains a character outside [A-Za-z0-9._-]", quoted(s));
    }
    return std::nullopt;
}

KeyName::KeyName(std::string s) : name_(std::move(s)) {
    if (auto why = problem(name_)) throw std::invalid_argument(*why);
}

}  // namespace condaguard
