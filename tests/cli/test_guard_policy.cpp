// conda-guard policy: text, JSON, and a bad file.
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include <sstream>

using namespace condaguard::test;
using json = nlohmann::json;

namespace {

// The line of `out` starting with `key` + a space, its columns joined by one space.
std::string row(const std::string& out, const std::string& key) {
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        if (!line.starts_with(key + " ")) continue;
        std::istringstream words(line);
        std::string joined, w;
        while (words >> w) joined += (joined.empty() ? "" : " ") + w;
        return joined;
    }
    return "(no row " + key + ")";
}

class GuardPolicy : public ::testing::Test {
protected:
    RunResult g(std::vector<std::string> args) { return run_isolated(conda_guard_exe(), std::move(args), t_ / "home"); }
    TempDir t_;
};

}  // namespace

TEST_F(GuardPolicy, DefaultsWithNoFile) {
    const RunResult r = g({"policy"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("min_rsa_bits     2048"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("max_index_bytes  1GiB"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("link_scripts     allow"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "");
}

TEST_F(GuardPolicy, UserFileValuesNameTheirSource) {
    stdfs::create_directories(t_ / "home/.conda");
    const stdfs::path f = t_ / "home/.conda/guard.yaml";
    write_file(f, "parallel: 8\nmin_age: 3d\nchannels:\n  - match: conda-forge\n    index: required\n");
    RunResult r = g({"policy"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(row(r.out, "parallel"), "parallel 8 " + f.string() + ":1:11");
    EXPECT_EQ(row(r.out, "min_rsa_bits"), "min_rsa_bits 2048 default");
    EXPECT_EQ(row(r.out, "channels[conda-forge].index"), "channels[conda-forge].index required " + f.string() + ":5:12");
    // Columns are aligned: every source starts at the same place.
    EXPECT_EQ(r.out.find("default\n") - r.out.find("min_rsa_bits"),
              r.out.find(f.string()) - r.out.find("parallel")) << r.out;
    r = g({"policy", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const json doc = json::parse(r.out);
    EXPECT_EQ(doc["version"], 1);
    EXPECT_EQ(doc["command"], "policy");
    EXPECT_EQ(doc["policy"]["parallel"]["value"], 8);
    EXPECT_EQ(doc["policy"]["parallel"]["source"], f.string() + ":1:11");
    EXPECT_EQ(doc["policy"]["min_age_seconds"]["value"], 3 * 86400);
    EXPECT_EQ(doc["policy"]["min_rsa_bits"]["source"], "default");
    EXPECT_EQ(doc["policy"]["channels"][0]["index"]["value"], "required");
}

TEST_F(GuardPolicy, BadFileExitsTwoNamingThePosition) {
    write_file(t_ / "p.yaml", "parallel: 4\nparalel: 3\n");
    const RunResult r = g({"policy", "--policy", (t_ / "p.yaml").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "conda-guard: error: " + (t_ / "p.yaml").string() + ":2:1: key 'paralel': unknown key (see conda-guard-policy(5))\n");
    EXPECT_EQ(g({"policy", "--policy", (t_ / "missing.yaml").string()}).status, 2);
}

TEST_F(GuardPolicy, A6_world_writable_policy_is_refused) {
    write_file(t_ / "p.yaml", "parallel: 4\n", 0666);
    ::chmod((t_ / "p.yaml").c_str(), 0666);
    const RunResult r = g({"policy", "--policy", (t_ / "p.yaml").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("writable by group or others"), std::string::npos) << r.err;
}

TEST_F(GuardPolicy, LoweredRsaFloorWarns) {
    write_file(t_ / "p.yaml", "min_rsa_bits: 1024\n");
    const RunResult r = g({"policy", "--policy", (t_ / "p.yaml").string()});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.err.find("warning: the policy accepts RSA keys of 1024 bits"), std::string::npos) << r.err;
}

TEST_F(GuardPolicy, A1_signatures_none_is_shown_with_its_source) {
    stdfs::create_directories(t_ / "home/.conda");
    const stdfs::path f = t_ / "home/.conda/guard.yaml";
    write_file(f, "channels:\n  - match: conda-forge\n    signatures: none\n  - match: bioconda\n");
    RunResult r = g({"policy"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(row(r.out, "channels[conda-forge].signatures"),
              "channels[conda-forge].signatures none (unsigned: its packages are UNVERIFIED) " + f.string() + ":3:17");
    EXPECT_EQ(row(r.out, "channels[bioconda].signatures"), "channels[bioconda].signatures required default");
    r = g({"policy", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const json doc = json::parse(r.out);
    EXPECT_EQ(doc["policy"]["channels"][0]["signatures"]["value"], "none");
    EXPECT_EQ(doc["policy"]["channels"][0]["signatures"]["source"], f.string() + ":3:17");
    EXPECT_EQ(doc["policy"]["channels"][1]["signatures"]["value"], "required");
    // A conflict is refused with the usual position.
    write_file(f, "channels:\n  - match: conda-forge\n    keys: [A]\n    signatures: none\n");
    r = g({"policy"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find(f.string() + ":4:17: key 'channels.signatures': 'signatures: none'"), std::string::npos)
        << r.err;
}
