#include <condaguard/sys/json.hpp>

#include <condaguard/sys/fs.hpp>

#include <fmt/format.h>


namespace condaguard {

using njson = nlohmann::json;

std::string duplicate_key_message(std::string_view key) {
    constexpr std::size_t shown = 80;
    std::string printable;
    for (const char c : key.substr(0, shown)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) printable += fmt::format("\\x{:02x}", u);
        else printable += c;
    }
    if (key.size() > shown) printable += "...";
    return fmt::format("duplicate key '{}'", printable);
}

std::string too_deep_message(std::size_t max_depth) { return fmt::format("nesting deeper than {}", max_depth); }

std::string too_large_message(std::size_t max_bytes) { return fmt::format("larger than {} bytes", max_bytes); }

std::string syntax_message(std::string_view what) {
    if (auto close = what.find("] "); what.starts_with("[json.exception.") && close != what.npos)
        what.remove_prefix(close + 2);
    return std::string(what);
}

njson parse_json(std::string_view text, const JsonLimits& limits) {
    if (text.size() > limits.max_bytes) throw JsonError(JsonError::Kind::TooLarge, too_large_message(limits.max_bytes));
    njson out;
    nlohmann::detail::json_sax_dom_parser<njson> dom(out, true);
    BoundedSax builder(dom, limits.max_depth);
    // parse_error above throws, so a false return cannot mean a syntax error
    // went unreported; treat it as one anyway rather than return half a value.
    if (!njson::sax_parse(text, &builder, njson::input_format_t::json, true))
        throw JsonError(JsonError::Kind::Syntax, "not a complete JSON document");
    return out;
}

njson read_json(int fd, const JsonLimits& limits, const std::string& what) {
    fs::CappedRead r = fs::read_capped(fd, limits.max_bytes, what);
    if (r.too_big) throw JsonError(JsonError::Kind::TooLarge, too_large_message(limits.max_bytes));
    return parse_json(r.data, limits);
}

}  // namespace condaguard
