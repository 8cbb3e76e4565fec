// The text escaping of report.cpp, byte by byte.
#include "report.hpp"

#include <gtest/gtest.h>

using condaguard::cli::escape_text;
using condaguard::cli::text_width;

TEST(Report, A19_escape_text_shows_controls_and_keeps_text) {
    EXPECT_EQ(escape_text("plain-1.0-0.conda"), "plain-1.0-0.conda");
    EXPECT_EQ(escape_text("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93") << "UTF-8 stays";
    EXPECT_EQ(escape_text("a\nb\tc\rd"), "a\\nb\\tc\\rd");
    EXPECT_EQ(escape_text(std::string_view("\x00\x1b[31m\x7f", 7)), "\\x00\\x1b[31m\\x7f");
    EXPECT_EQ(escape_text("back\\slash"), "back\\\\slash") << "so a literal \\n cannot pass for a newline";
    EXPECT_EQ(escape_text("\xc2\x9b" "2J"), "\\xc2\\x9b2J") << "C1 CSI";
    EXPECT_EQ(escape_text("\xe2\x80\xae" "exe.txt"), "\\xe2\\x80\\xaeexe.txt") << "right-to-left override";
}

TEST(Report, A19_escape_text_shows_bytes_that_are_not_utf8) {
    EXPECT_EQ(escape_text("\xff"), "\\xff");
    EXPECT_EQ(escape_text("\xc3"), "\\xc3") << "truncated";
    EXPECT_EQ(escape_text("\xc0\xaf"), "\\xc0\\xaf") << "overlong '/'";
    EXPECT_EQ(escape_text("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "surrogate";
    EXPECT_EQ(escape_text("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80") << "above U+10FFFF";
    EXPECT_EQ(escape_text("\x80" "a"), "\\x80a") << "stray continuation byte";
}

TEST(Report, text_width_counts_what_is_shown) {
    EXPECT_EQ(text_width("abc"), 3u);
    EXPECT_EQ(text_width("caf\xc3\xa9"), 4u);
    EXPECT_EQ(text_width("a\n"), 3u);
    EXPECT_EQ(text_width("\xff"), 4u);
}
