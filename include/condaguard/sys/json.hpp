// The one bounded JSON reader for every document read from disk or network:
// a size cap, a nesting-depth cap, no recursion proportional to the depth,
// and one meaning per document (an object holding the same key twice, keys
// compared after unescaping, is refused).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
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

// How a DuplicateKeyFinder keeps the keys of the open objects, back to back.
// CopiedKeys copies each key (for keys that do not outlive the call, as
// nlohmann's SAX hands them over); ViewedKeys keeps views (for keys that
// live as long as the walk, as in a document held in memory).
class CopiedKeys {
public:
    std::size_t size() const noexcept { return ends_.size(); }
    std::string_view operator[](std::size_t i) const {
        const std::size_t begin = i == 0 ? 0 : ends_[i - 1];
        return std::string_view(text_).substr(begin, ends_[i] - begin);
    }
    void push_back(std::string_view k) {
        text_.append(k);
        ends_.push_back(text_.size());
    }
    void resize(std::size_t n) {
        text_.resize(n == 0 ? 0 : ends_[n - 1]);
        ends_.resize(n);
    }

private:
    std::string text_;               // the keys, back to back
    std::vector<std::size_t> ends_;  // where each key ends in text_
};

using ViewedKeys = std::vector<std::string_view>;

// The keys of every open object, to find one an object holds twice, with
// O(n log n) work for an object of n keys whatever their hashes are (no
// hash table an attacker could fill with colliding keys) and memory linear
// in the keys (dropped as their object closes). The signed-index walk (channel/verify.cpp) uses it too,
// with ViewedKeys. While an object's keys arrive in strictly increasing
// order (conda's indexers and ours sort them) each is compared with the one
// before it only; from the first key out of order on, each key's (hash,
// index) is kept too, and when the object closes they are sorted by hash,
// then as text, so that equal keys become neighbours. `KeyHash` only speeds the sort up; a test
// makes every key collide.
template <class KeyHash = std::hash<std::string_view>, class Keys = CopiedKeys>
class DuplicateKeyFinder {
public:
    std::size_t depth() const noexcept { return levels_.size(); }
    // A container opens. A caller may open arrays too (one stack for both) or
    // objects only; key() goes to the innermost open level.
    void open() { levels_.push_back(Level{.keys_from = keys_.size()}); }
    // A key of the innermost open object, unescaped. Throws JsonError DuplicateKey.
    void key(std::string_view k) {
        Level& l = levels_.back();
        const std::size_t n = keys_.size() - l.keys_from;  // this object's keys so far
        if (n >= std::numeric_limits<std::uint32_t>::max())
            throw JsonError(JsonError::Kind::TooLarge, "an object with more than 2^32 keys");
        if (l.unsorted) {
            hashed_.push_back(HashedKey{hash_(k), static_cast<std::uint32_t>(n)});
        } else if (n != 0 && !before(keys_[keys_.size() - 1], k)) {
            if (keys_[keys_.size() - 1] == k) duplicate(k);
            l.unsorted = true;
            l.hashed_from = hashed_.size();
            for (std::size_t i = 0; i < n; ++i)
                hashed_.push_back(HashedKey{hash_(keys_[l.keys_from + i]), static_cast<std::uint32_t>(i)});
            hashed_.push_back(HashedKey{hash_(k), static_cast<std::uint32_t>(n)});
        }
        keys_.push_back(k);
    }
    // The innermost level closes. Throws JsonError DuplicateKey.
    void close() {
        const Level l = levels_.back();
        if (l.unsorted) check_unsorted(l);
        keys_.resize(l.keys_from);
        if (l.unsorted) hashed_.resize(l.hashed_from);
        levels_.pop_back();
    }

private:
    struct Level {
        std::size_t keys_from = 0;    // its keys in keys_
        std::size_t hashed_from = 0;  // and their hashes in hashed_, once out of order
        bool unsorted = false;
    };
    struct HashedKey {
        std::uint64_t hash;
        std::uint32_t index;  // among its object's keys
    };

    // a < b as std::string_view compares them (bytes as unsigned char),
    // deciding on the first byte without a call when it differs.
    static bool before(std::string_view a, std::string_view b) noexcept {
        if (!a.empty() && !b.empty() && a.front() != b.front())
            return static_cast<unsigned char>(a.front()) < static_cast<unsigned char>(b.front());
        return a < b;
    }

    [[noreturn]] static void duplicate(std::string_view k) {
        throw JsonError(JsonError::Kind::DuplicateKey, duplicate_key_message(k));
    }

    void check_unsorted(const Level& l) {
        auto text_of = [&](const HashedKey& h) { return keys_[l.keys_from + h.index]; };
        const auto from = hashed_.begin() + static_cast<std::ptrdiff_t>(l.hashed_from);
        // Within a run of equal hashes (a collision, or an attacker's many)
        // the keys are ordered as text: equal keys end up side by side.
        std::sort(from, hashed_.end(), [&](const HashedKey& a, const HashedKey& b) {
            return a.hash != b.hash ? a.hash < b.hash : text_of(a) < text_of(b);
        });
        const auto twice = std::adjacent_find(from, hashed_.end(), [&](const HashedKey& a, const HashedKey& b) {
            return a.hash == b.hash && text_of(a) == text_of(b);
        });
        if (twice != hashed_.end()) duplicate(text_of(*twice));
    }

    [[no_unique_address]] KeyHash hash_;
    Keys keys_;                      // the keys of every open object, back to back
    std::vector<HashedKey> hashed_;  // of the open objects whose keys came out of order
    std::vector<Level> levels_;
};

// A SAX filter for nlohmann::json::sax_parse (whose parser is a loop with its
// state on the heap): counts the depth and passes the keys of each open
// object to a DuplicateKeyFinder, throwing JsonError past the depth cap or on
// a repeated key (keys arrive unescaped: "a" and "\u0061" are the same key),
// and forwards every event to `inner`. For readers that stream a document
// instead of holding it.
template <class Inner, class KeyHash = std::hash<std::string_view>>
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
        keys_.key(k);
        return inner_.key(k);
    }
    bool end_object() {
        keys_.close();
        return inner_.end_object();
    }
    bool start_array(std::size_t n) {
        enter();
        return inner_.start_array(n);
    }
    bool end_array() {
        keys_.close();
        return inner_.end_array();
    }
    // A syntax error always throws, whatever `inner` would do with it.
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        throw JsonError(JsonError::Kind::Syntax, syntax_message(e.what()));
    }

private:
    void enter() {
        if (keys_.depth() >= max_depth_) throw JsonError(JsonError::Kind::TooDeep, too_deep_message(max_depth_));
        keys_.open();
    }
    Inner& inner_;
    std::size_t max_depth_;
    DuplicateKeyFinder<KeyHash> keys_;
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
