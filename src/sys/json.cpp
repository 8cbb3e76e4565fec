#include <condaguard/sys/json.hpp>

#include <condaguard/sys/fs.hpp>

#include <fmt/format.h>

#include <unordered_set>
#include <vector>

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

namespace {

// nlohmann's own DOM builder behind a SAX filter that counts the depth and
// remembers the keys of each open object. nlohmann::json::sax_parse drives
// it from a loop with its state on the heap, so nothing here recurses.
class BoundedDomBuilder {
public:
    using number_integer_t = njson::number_integer_t;
    using number_unsigned_t = njson::number_unsigned_t;
    using number_float_t = njson::number_float_t;
    using string_t = njson::string_t;
    using binary_t = njson::binary_t;

    BoundedDomBuilder(njson& out, std::size_t max_depth) : dom_(out, true), max_depth_(max_depth) {}

    bool null() { return dom_.null(); }
    bool boolean(bool v) { return dom_.boolean(v); }
    bool number_integer(number_integer_t v) { return dom_.number_integer(v); }
    bool number_unsigned(number_unsigned_t v) { return dom_.number_unsigned(v); }
    bool number_float(number_float_t v, const string_t& s) { return dom_.number_float(v, s); }
    bool string(string_t& v) { return dom_.string(v); }
    bool binary(binary_t& v) { return dom_.binary(v); }

    bool start_object(std::size_t n) {
        enter();
        levels_.back().is_object = true;
        return dom_.start_object(n);
    }
    // `k` arrives unescaped: "a" and "\u0061" are the same key here.
    bool key(string_t& k) {
        if (!levels_.back().keys.insert(k).second) throw JsonError(JsonError::Kind::DuplicateKey, duplicate_key_message(k));
        return dom_.key(k);
    }
    bool end_object() {
        levels_.pop_back();
        return dom_.end_object();
    }
    bool start_array(std::size_t n) {
        enter();
        return dom_.start_array(n);
    }
    bool end_array() {
        levels_.pop_back();
        return dom_.end_array();
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        std::string why = e.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> "parse error at ..."
        if (auto close = why.find("] "); why.starts_with("[json.exception.") && close != why.npos)
            why.erase(0, close + 2);
        throw JsonError(JsonError::Kind::Syntax, why);
    }

private:
    struct Level {
        bool is_object = false;
        std::unordered_set<std::string> keys;
    };
    void enter() {
        if (levels_.size() >= max_depth_) throw JsonError(JsonError::Kind::TooDeep, too_deep_message(max_depth_));
        levels_.emplace_back();
    }

    nlohmann::detail::json_sax_dom_parser<njson> dom_;
    std::size_t max_depth_;
    std::vector<Level> levels_;
};

}  // namespace

njson parse_json(std::string_view text, const JsonLimits& limits) {
    if (text.size() > limits.max_bytes) throw JsonError(JsonError::Kind::TooLarge, too_large_message(limits.max_bytes));
    njson out;
    BoundedDomBuilder builder(out, limits.max_depth);
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
