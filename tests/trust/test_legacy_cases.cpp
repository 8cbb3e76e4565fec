// Every row of ../shared/fixtures/legacy-sig/cases.tsv gets its expected
// verdict, under the default policy and with the floor lowered to 1024 bits.
// Skips cleanly when ../shared is not there.
#include <condaguard/trust/verifier.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace condaguard;
using namespace condaguard::test;

namespace {

struct Case {
    std::string file, sig, expected, expected_min1024, note;
};

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> out;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, '\t')) out.push_back(cell);
    return out;
}

std::vector<Case> load_cases(const stdfs::path& tsv) {
    std::ifstream in(tsv);
    std::string line;
    std::getline(in, line);
    const auto header = split_tabs(line);
    EXPECT_EQ(header, (std::vector<std::string>{"file", "sig", "expected", "expected_min1024", "note"}));
    std::vector<Case> cases;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto c = split_tabs(line);
        if (c.size() < 4) {
            ADD_FAILURE() << "short row: " << line;
            continue;
        }
        c.resize(5);
        cases.push_back({c[0], c[1], c[2], c[3], c[4]});
    }
    return cases;
}

void run_table(unsigned min_bits, bool lowered) {
    auto shared = shared_dir();
    if (!shared) GTEST_SKIP() << "../shared is not present";
    const stdfs::path root = *shared / "fixtures" / "legacy-sig";
    const auto cases = load_cases(root / "cases.tsv");
    ASSERT_GE(cases.size(), 30u);
    KeyStore store(root / "keys", KeyPolicy{.min_rsa_bits = min_bits});
    Verifier verifier(store);
    for (const auto& c : cases) {
        ASSERT_EQ(c.sig, c.file + ".sig");
        const std::string& want = lowered ? c.expected_min1024 : c.expected;
        Result r = verifier.verify_file(root / c.file);
        EXPECT_EQ(to_string(r.verdict), want) << c.file << "\n  reason: " << r.reason << "\n  note: " << c.note;
        if (r.verdict != Verdict::Valid && r.verdict != Verdict::Invalid) {
            // Failures name the file at fault.
            EXPECT_TRUE(r.reason.find(".sig") != std::string::npos || r.reason.find(".pub") != std::string::npos)
                << r.reason;
        }
    }
}

}  // namespace

TEST(LegacyCases, DefaultPolicy) { run_table(default_min_rsa_bits, false); }

TEST(LegacyCases, MinKeyBits1024) { run_table(1024, true); }
