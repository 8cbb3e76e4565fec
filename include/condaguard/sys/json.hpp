// The one bounded JSON reader for every document read from disk or network:
// a size cap, a nesting-depth cap, no recursion proportional to the depth,
// and one meaning per document (an object holding the same key twice, keys
// compared after unescaping, is refused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace condaguard {

// Deepest nesting of arrays and objects accepted in any document. Every
// document condaguard reads is at most a handful of levels deep; 64 leaves
// room and keeps whatever walks a parsed value recursively (nlohmann's
// dump() and copy constructor) far from the end of the stack.
inline constexpr std::size_t max_json_depth = 64;

// Size caps of the small documents, each read whole into memory.
inline constexpr std::size_t max_state_json_bytes = std::size_t{64} << 20;        // DIR/state.json
inline constexpr std::size_t max_index_cache_bytes = std::size_t{512} << 20; // SUBDIR/.cache/condaguard-index.json

struct JsonLimits {
    std::size_t max_bytes = 0;
    std::size_t max_depth = max_json_depth;
};

// What is wrong with a document; what() names the fault without the file
// ("duplicate key 'packages.conda'", "nesting deeper than 64", "larger than
// N bytes", or the parser's syntax error), so callers report the file beside it.
class JsonError : public std::runtime_error {
public:
    enum class Kind { TooLarge, TooDeep, DuplicateKey, Syntax };
    JsonError(Kind k, const std::string& what) : std::runtime_error(what), kind_(k) {}
    Kind kind() const noexcept { return kind_; }

private:
    Kind kind_;
};

// "duplicate key 'K'" with K printable on one line (control bytes escaped, long keys cut).
std::string duplicate_key_message(std::string_view key);
std::string too_deep_message(std::size_t max_depth);
std::string too_large_message(std::size_t max_bytes);
// nlohmann's "[json.exception.parse_error.101] parse error at ..." as "parse error at ...".
std::string syntax_message(std::string_view nlohmann_what);

// A SAX filter for nlohmann::json::sax_parse (whose parser is a loop with its
// state on the heap): counts the depth and remembers the keys of each open
// object, throwing JsonError past the depth cap or on a repeated key (keys
// arrive unescaped: "a" and "\u0061" are the same key), and forwards every
// event to `inner`. For readers that stream a document instead of holding it.
template <class Inner>
class BoundedSax {
public:
    using json_t = nlohmann::json;
    BoundedSax(Inner& inner, std::size_t max_depth) : inner_(inner), max_depth_(max_depth) {}

    bool null() { return inner_.null(); }
    bool boolean(bool v) { return inner_.boolean(v); }
    bool number_integer(json_t::number_integer_t v) { return inner_.number_integer(v); }
    bool number_unsigned(json_t::number_unsigned_t v) { return inner_.number_unsigned(v); }
    bool number_float(json_t::number_float_t v, const json_t::string_t& s) { return inner_.number_float(v, s); }
    bool string(json_t::string_t& v) { return inner_.string(v); }
    bool binary(json_t::binary_t& v) { return inner_.binary(v); }
    bool start_object(std::size_t n) {
        enter();
        return inner_.start_object(n);
    }
    bool key(json_t::string_t& k) {
        if (!levels_.back().insert(k).second) throw JsonError(JsonError::Kind::DuplicateKey, duplicate_key_message(k));
        return inner_.key(k);
    }
    bool end_object() {
        levels_.pop_back();
        return inner_.end_object();
    }
    bool start_array(std::size_t n) {
        enter();
        return inner_.start_array(n);
    }
    bool end_array() {
        levels_.pop_back();
        return inner_.end_array();
    }
    // A syntax error always throws, whatever `inner` would do with it.
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        throw JsonError(JsonError::Kind::Syntax, syntax_message(e.what()));
    }

private:
    void enter() {
        if (levels_.size() >= max_depth_) throw JsonError(JsonError::Kind::TooDeep, too_deep_message(max_depth_));
        levels_.emplace_back();  // arrays get an (unused) empty set too: one stack for both
    }
    Inner& inner_;
    std::size_t max_depth_;
    std::vector<std::unordered_set<std::string>> levels_;
};

// Parses one JSON document (strict: nothing but whitespace after it) into
// nlohmann's form, through its SAX interface, whose parser keeps its own
// stack on the heap. Throws JsonError.
//
// nlohmann::json's destructor is iterative (it flattens children onto a
// heap stack); its dump() and copy constructor recurse once per level, which
// the depth cap bounds to max_depth frames.
nlohmann::json parse_json(std::string_view text, const JsonLimits& limits);

// Reads `fd` to its end (at most limits.max_bytes; one byte more is
// JsonError TooLarge, without reading the rest) and parses it. `what` names
// the file in I/O errors.
nlohmann::json read_json(int fd, const JsonLimits& limits, const std::string& what);

}  // namespace condaguard
