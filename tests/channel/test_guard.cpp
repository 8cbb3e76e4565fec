// Guard times and durations: strict parsing, exact formatting.
#include <condaguard/channel/guard.hpp>
#include <condaguard/channel/state.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

using namespace condaguard;

TEST(GuardTime, RoundTripsAcrossTheWholeRange) {
    // Found by fuzz_repodata: years outside 1677-2262 overflowed a nanosecond clock.
    for (const char* t : {"0000-01-01T00:00:00Z", "0014-06-30T12:34:56Z", "1970-01-01T00:00:00Z",
                          "2026-11-25T09:14:17Z", "2262-04-12T00:00:00Z", "9999-12-31T23:59:59Z"}) {
        auto parsed = parse_time(t);
        ASSERT_TRUE(parsed) << t;
        EXPECT_EQ(format_time(*parsed), t);
    }
}

TEST(GuardTime, RefusesAnythingButStrictUtc) {
    for (const char* t : {"", "2026-11-25", "2026-11-25T09:14:17", "2026-11-25T09:14:17+00:00", "2026-11-25 09:14:17Z",
                          "2026-02-30T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T09:60:00Z", "2026-13-01T00:00:00Z",
                          "2026-11-25T09:14:17.5Z", "+026-11-25T09:14:17Z", "2026-11-25t09:14:17z"})
        EXPECT_FALSE(parse_time(t)) << t;
}

TEST(GuardDuration, ParsesOneUnit) {
    EXPECT_EQ(parse_duration("30d"), Seconds(30 * 86400));
    EXPECT_EQ(parse_duration("12h"), Seconds(12 * 3600));
    EXPECT_EQ(parse_duration("15m"), Seconds(15 * 60));
    EXPECT_EQ(parse_duration("10s"), Seconds(10));
    for (const char* d : {"", "d", "0d", "-1d", "1.5h", "1w", "30", "1d2h", " 1d", "99999999999999999999d", "36501d"})
        EXPECT_FALSE(parse_duration(d)) << d;
}

TEST(GuardFields, FromJsonNamesTheFaultyField) {
    nlohmann::json g{{"channel", "c"}, {"subdir", "noarch"}, {"version", 3},
                     {"signed_at", "2026-11-25T00:00:00Z"}, {"expires", "2026-11-26T00:00:00Z"}};
    EXPECT_EQ(Guard::from_json(g).version, 3);
    EXPECT_EQ(Guard::from_json(g).to_json(), g);
    auto bad = g;
    bad["version"] = 2.5;
    EXPECT_THROW(Guard::from_json(bad), std::invalid_argument);
    bad = g;
    bad.erase("channel");
    try {
        Guard::from_json(bad);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "info.guard.channel is missing");
    }
}

// Writers in parallel (each with its own lock file description, as separate
// processes have) lose none of each other's entries, and versions only rise.
TEST(StateStore, ConcurrentRecordsAreAllKeptAndVersionsOnlyRise) {
    test::TempDir t;
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w)
        writers.emplace_back([&, w] {
            StateStore s(t / "state");
            for (int v = 1; v <= 20; ++v)
                s.record("loc" + std::to_string(w), "chan", "sub" + std::to_string(w), SeenIndex{v, "h", "t"});
        });
    for (auto& th : writers) th.join();
    StateStore s(t / "state");
    for (int w = 0; w < 4; ++w) {
        auto seen = s.seen("chan", "sub" + std::to_string(w));
        ASSERT_TRUE(seen) << w;
        EXPECT_EQ(seen->version, 20);
        EXPECT_EQ(s.channel_at("loc" + std::to_string(w)), "chan");
    }
    s.record("loc0", "chan", "sub0", SeenIndex{5, "old", "t"});
    EXPECT_EQ(s.seen("chan", "sub0")->version, 20) << "a lower version never replaces a higher one";
    EXPECT_EQ(test::file_mode(t / "state" / "state.json"), 0600u);
    EXPECT_TRUE(s.reset("chan"));
    EXPECT_FALSE(s.seen("chan", "sub0"));
    EXPECT_FALSE(s.reset("chan"));
}

TEST(StateStore, DamagedStateIsAnErrorNotAReset) {
    test::TempDir t;
    test::write_file(t / "state" / "state.json", "{not json", 0600);
    StateStore s(t / "state");
    EXPECT_THROW(s.seen("chan", "noarch"), std::runtime_error);
}
