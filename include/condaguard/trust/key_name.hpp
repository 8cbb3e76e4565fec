// A key name as it appears in a .sig file and as a file name in the keys
// directory: [A-Za-z0-9_][A-Za-z0-9._-]{0,63}, no "..".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace condaguard {

class KeyName {
public:
    static constexpr std::size_t max_length = 64;

    // Why `s` is not a valid key name, or nullopt when it is.
    static std::optional<std::string> problem(std::string_view s);

    // Throws std::invalid_argument with problem()'s text when invalid.
    explicit KeyName(std::string s);

    const std::string& str() const noexcept { return name_; }
    friend bool operator==(const KeyName&, const KeyName&) = default;

private:
    std::string name_;
};

}  // namespace condaguard
