// parallel_for: every index once, and a failure reaches the caller instead of
// terminating the process from a worker thread.
#include <condaguard/sys/parallel.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

TEST(ParallelFor, VisitsEveryIndexOnce) {
    std::vector<std::atomic<int>> seen(1000);
    condaguard::parallel_for(seen.size(), 4, [&](std::size_t i) { seen[i]++; });
    for (const auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(ParallelFor, RethrowsTheFirstFailureAfterJoining) {
    std::atomic<int> ran{0};
    EXPECT_THROW(condaguard::parallel_for(100, 4,
                                          [&](std::size_t i) {
                                              ran++;
                                              if (i == 7) throw std::runtime_error("boom");
                                          }),
                 std::runtime_error);
    EXPECT_GE(ran.load(), 8);
}
