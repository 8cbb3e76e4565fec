// The bounded JSON reader: one meaning per document (A25), bounded size and
// depth (A12), and no recursion a deep document could exhaust the stack with.
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <string>

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
