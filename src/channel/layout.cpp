#include <condaguard/channel/layout.hpp>

#include <cstddef>

namespace condaguard {

bool is_subdir_name(std::string_view name) {
    if (name == "noarch") return true;
    const auto dash = name.find('-');
    if (dash == name.npos || dash == 0 || dash + 1 == name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > dash && c == '_') || i == dash;
        if (!ok) return false;
    }
    return true;
}

}  // namespace condaguard
