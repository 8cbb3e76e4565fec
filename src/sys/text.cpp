#include <condaguard/sys/text.hpp>

#include <fmt/format.h>

namespace condaguard {

std::string quoted(std::string_view raw, std::size_t max_shown) {
    std::string out = "'";
    for (std::size_t i = 0; i < raw.size() && i < max_shown; ++i) {
        const auto c = static_cast<unsigned char>(raw[i]);
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'')
            out += fmt::format("\\x{:02x}", c);
        else
            out += static_cast<char>(c);
    }
    if (raw.size() > max_shown) out += "...";
    return out + "'";
}

}  // namespace condaguard
