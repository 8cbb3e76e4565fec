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
