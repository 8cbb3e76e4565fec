// The environment a command runs in, injected as one value: the clock, the
// home directory, and the directories trust lives in. Only the command line
// reads environment variables to build it; the library takes what it is given.
#pragma once

#include <condaguard/sys/time.hpp>

#include <filesystem>
#include <functional>

namespace condaguard {

struct Environment {
    std::function<TimePoint()> clock = system_now;  // tests set a fixed clock instead of sleeping
    std::filesystem::path home;                     // $HOME, else the password database
    std::filesystem::path keys_dir;                 // ~/.conda/keys unless overridden
    std::filesystem::path state_dir;                // ~/.conda/guard unless overridden

    TimePoint now() const { return clock(); }
};

}  // namespace condaguard
