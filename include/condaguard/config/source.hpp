// What the config area's values share: where each came from, and the error
// a configuration file that cannot be used raises.
#pragma once

#include <stdexcept>
#include <string>

namespace condaguard {

// Where a value came from: "default", "FILE:LINE:COL" (1-based, the value's
// position in a YAML file) or the name of an environment variable.
inline constexpr const char* default_source = "default";

template <class T>
struct Sourced {
    T value{};
    std::string source = default_source;
};

// A configuration file that cannot be used: what() names the file, line and
// column ("FILE:LINE:COL: key 'parallel': expected a whole number from 1 to 64").
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace condaguard
