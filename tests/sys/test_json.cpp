// The bounded JSON reader: one meaning per document (A25), bounded size and
// depth (A12), and no recursion a deep document could exhaust the stack with.
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <fmt/format.h>

using namespace condaguard;

namespace {

const JsonLimits small{.max_bytes = 1 << 20};

std::string error_of(std::string_view text, const JsonLimits& limits = small) {
    try {
        parse_json(text, limits);
    } catch (const JsonError& e) {
        return e.what();
    }
    return "(accepted)";
}

// Every key hashes the same: the worst an attacker who knows the hash can do.
struct CollidingHash {
    std::uint64_t operator()(std::string_view) const noexcept { return 0x5eed; }
};

// Events the bounded reader forwards, ignored: only its own checks are timed.
struct Ignore {
    using json_t = nlohmann::json;
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(json_t::number_integer_t) { return true; }
    bool number_unsigned(json_t::number_unsigned_t) { return true; }
    bool number_float(json_t::number_float_t, const json_t::string_t&) { return true; }
    bool string(json_t::string_t&) { return true; }
    bool binary(json_t::binary_t&) { return true; }
    bool start_object(std::size_t) { return true; }
    bool key(json_t::string_t&) { return true; }
    bool end_object() { return true; }
    bool start_array(std::size_t) { return true; }
    bool end_array() { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

template <class Hash>
std::string error_with_hash(std::string_view text) {
    Ignore ignore;
    BoundedSax<Ignore, Hash> sax(ignore, max_json_depth);
    try {
        nlohmann::json::sax_parse(text, &sax, nlohmann::json::input_format_t::json, true);
    } catch (const JsonError& e) {
        return e.what();
    }
    return "(accepted)";
}

// {"k199999": 0, ..., "k000000": 0, EXTRA}: keys out of order from the second on.
std::string many_keys(std::size_t n, const std::string& extra = "") {
    std::string doc = "{";
    for (std::size_t i = n; i-- > 0;) doc += fmt::format("\"k{:06}\":0,", i);
    if (extra.empty()) doc.pop_back();
    return doc + extra + "}";
}

}  // namespace

TEST(Json, ParsesAnOrdinaryDocument) {
    const auto j = parse_json(R"({"a": [1, 2.5, "x\u0041", null, true], "b": {"c": {}}})", small);
    EXPECT_EQ(j["a"][2], "xA");
    EXPECT_TRUE(j["b"]["c"].is_object());
}

TEST(Json, A25_duplicate_key_at_top_level_after_unescaping) {
    EXPECT_EQ(error_of(R"({"packages.conda": {}, "packages.cond\u0061": {"evil": 1}})"),
              "duplicate key 'packages.conda'");
    EXPECT_EQ(error_of(R"({"a": 1, "a": 1})"), "duplicate key 'a'");
}

TEST(Json, A25_duplicate_key_deep_inside) {
    EXPECT_EQ(error_of(R"({"info": {"guard": {"version": 1, "versio\u006e": 9}}})"), "duplicate key 'version'");
    EXPECT_EQ(error_of(R"([{"k": 1}, {"k": 2, "k": 3}])"), "duplicate key 'k'");
    // The same key in sibling objects is fine.
    EXPECT_EQ(error_of(R"([{"k": 1}, {"k": 2}])"), "(accepted)");
}

TEST(Json, A25_duplicate_key_message_stays_on_one_line) {
    EXPECT_EQ(error_of("{\"a\\nb\": 1, \"a\\nb\": 2}"), "duplicate key 'a\\x0ab'");
}

TEST(Json, A12_depth_bomb_refused_without_recursion) {
    test::Deadline d(10);
    const std::size_t deep = 100'000;
    for (const char* open_close : {"[]", "{}"}) {
        std::string bomb;
        if (open_close[0] == '[') bomb = std::string(deep, '[') + std::string(deep, ']');
        else
            for (std::size_t i = 0; i < deep; ++i) bomb += "{\"a\":";
        EXPECT_EQ(error_of(bomb, JsonLimits{.max_bytes = bomb.size()}), "nesting deeper than 64");
    }
    // Exactly the cap is accepted, one more is not.
    const std::string at_cap = std::string(max_json_depth, '[') + std::string(max_json_depth, ']');
    EXPECT_EQ(error_of(at_cap), "(accepted)");
    const std::string over = std::string(max_json_depth + 1, '[') + std::string(max_json_depth + 1, ']');
    EXPECT_EQ(error_of(over), "nesting deeper than 64");
}

TEST(Json, A12_oversize_document_refused) {
    EXPECT_EQ(error_of(R"({"a": "0123456789"})", JsonLimits{.max_bytes = 10}), "larger than 10 bytes");
    test::TempDir t;
    test::write_file(t / "big.json", "[" + std::string(100, ' ') + "]");
    const auto f = fs::open_untrusted(t / "big.json");
    try {
        read_json(f.fd.get(), JsonLimits{.max_bytes = 50}, "big.json");
        FAIL() << "accepted";
    } catch (const JsonError& e) {
        EXPECT_EQ(e.kind(), JsonError::Kind::TooLarge);
        EXPECT_STREQ(e.what(), "larger than 50 bytes");
    }
}

TEST(Json, SyntaxErrorsNameTheFaultOnOneLine) {
    const std::string why = error_of("{\"a\": \n tru}");
    EXPECT_TRUE(why.starts_with("parse error at line 2")) << why;
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;
    EXPECT_TRUE(error_of("{} x").starts_with("parse error")) << error_of("{} x");
    EXPECT_TRUE(error_of("").starts_with("parse error"));
}

// A12: an object's keys are checked for repeats in O(n log n) whatever their
// hashes: 200,000 keys that all collide (and come out of order, so that the
// comparison with the previous key is not enough) take well under a second,
// where a hash table would compare each key with every one before it (2e10
// comparisons, past the deadline).
TEST(Json, A12_colliding_key_hashes_do_not_make_duplicate_checks_quadratic) {
    test::Deadline d(60);  // quadratic would take hours; 60 s leaves room for ASan on a busy machine
    constexpr std::size_t n = 200'000;
    EXPECT_EQ(error_with_hash<CollidingHash>(many_keys(n)), "(accepted)");
    // A repeat is still found among them, spelt with escapes, wherever it is.
    EXPECT_EQ(error_with_hash<CollidingHash>(many_keys(n, R"("\u006b100000":1)")), "duplicate key 'k100000'");
    EXPECT_EQ(error_with_hash<CollidingHash>(many_keys(n, R"("k19999\u0039":1)")), "duplicate key 'k199999'");
    EXPECT_EQ(error_with_hash<CollidingHash>(many_keys(n, R"("k000000":{"b":1,"a":{"c":1}})")),
              "duplicate key 'k000000'");
    // The same document through the real hash and parse_json.
    EXPECT_EQ(error_of(many_keys(n), JsonLimits{.max_bytes = 16 << 20}), "(accepted)");
    EXPECT_EQ(error_of(many_keys(n, R"("\u006b100000":1)"), JsonLimits{.max_bytes = 16 << 20}),
              "duplicate key 'k100000'");
}

// A25: repeats are found in sorted objects (against the previous key), in
// objects out of order (first and last key equal), nested ones, and the same
// key in two sibling or nested objects is no repeat.
TEST(Json, A25_duplicate_keys_sorted_unsorted_and_nested) {
    for (auto check : {error_with_hash<CollidingHash>, error_with_hash<std::hash<std::string_view>>}) {
        EXPECT_EQ(check(R"({"a": 1, "b": 2, "\u0062": 3})"), "duplicate key 'b'");
        EXPECT_EQ(check(R"({"z": 1, "a": 2, "m": 3, "\u007a": 4})"), "duplicate key 'z'");
        EXPECT_EQ(check(R"({"b": {"y": 1, "x": 2, "y": 3}, "a": 1})"), "duplicate key 'y'");
        EXPECT_EQ(check(R"({"b": {"b": 1, "a": {"b": 2, "a": [{"b": 1, "a": 2}]}}, "a": {"a": 1}})"), "(accepted)");
        EXPECT_EQ(check(R"({"b": {"x": 1}, "a": 1, "b": 2})"), "duplicate key 'b'");
        EXPECT_EQ(check(R"({"": 1, "\u0000": 2, "": 3})"), "duplicate key ''");
        EXPECT_EQ(check(R"([{"ab": 1, "a": 2}, {"a": 1, "ab": 2}])"), "(accepted)");
    }
}
