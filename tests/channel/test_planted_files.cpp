// Point 1 of the hardening: nothing blocks, nothing is opened blind. Each
// test plants a FIFO (or a device) where the verifier or the indexer reads a
// file, and expects a prompt refusal that names what it found. Without
// O_NONBLOCK the open of a FIFO with no writer blocks forever: the Deadline
// turns such a hang into a failure.
#include <condaguard/channel/publish.hpp>
#include <condaguard/channel/state.hpp>
#include <condaguard/channel/verify.hpp>
#include <condaguard/trust/verifier.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

const TimePoint t0 = *parse_time("2026-11-25T10:00:00Z");

class Planted : public ::testing::Test {
protected:
    void SetUp() override {
        key_ = &keys_.add("chan");
        build_package(ch() / "noarch", PackageSpec{.name = "alpha"});
        build_package(ch() / "noarch", PackageSpec{.name = "beta", .format = PackageFormat::TarBz2});
        index_channel(ch(), IndexOptions{.signing = IndexSigning{.key_name = KeyName("chan"),
                                                                 .key = key_,
                                                                 .channel_id = "example",
                                                                 .sign_packages = true,
                                                                 .signed_at = t0}});
        policy_.now = t0 + std::chrono::hours(1);
    }
    stdfs::path ch() const { return t_ / "channel"; }
    stdfs::path noarch(const std::string& f) const { return ch() / "noarch" / f; }

    static void plant_fifo(const stdfs::path& p) {
        stdfs::remove(p);
        ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0) << p;
    }
    ChannelReport verify() {
        KeyStore store(keys_.keys());
        Verifier v(store);
        StateStore state(t_ / "state");
        return verify_channel(ch(), v, state, policy_);
    }
    static Result of(const ChannelReport& report, const std::string& suffix) {
        for (const auto& r : report.all())
            if (r.path.ends_with(suffix)) return r;
        return Result{.path = suffix, .verdict = Verdict::Valid, .reason = "(no result for this file)"};
    }
    static void expect(const Result& r, Verdict v, const std::string& fragment) {
        EXPECT_EQ(to_string(r.verdict), to_string(v)) << r.path << ": " << r.reason;
        EXPECT_NE(r.reason.find(fragment), std::string::npos) << r.path << ": " << r.reason;
    }

    TempDir t_;
    Keys keys_;
    const PrivateKey* key_ = nullptr;
    ChannelPolicy policy_;
};

}  // namespace

TEST_F(Planted, BaselineIsValid) {
    for (const auto& r : verify().all()) EXPECT_EQ(r.verdict, Verdict::Valid) << r.path << ": " << r.reason;
}

TEST_F(Planted, A13_fifo_in_place_of_a_package) {
    Deadline d(20);
    plant_fifo(noarch("alpha-1.0-0.conda"));
    expect(of(verify(), "alpha-1.0-0.conda"), Verdict::Invalid, "FIFO");
}

TEST_F(Planted, A13_fifo_in_place_of_a_package_signature) {
    Deadline d(20);
    plant_fifo(noarch("beta-1.0-0.tar.bz2.sig"));
    expect(of(verify(), "beta-1.0-0.tar.bz2"), Verdict::BadSigFile, "FIFO");
}

TEST_F(Planted, A13_fifo_in_place_of_the_index) {
    Deadline d(20);
    plant_fifo(noarch("repodata.json"));
    const Result r = of(verify(), "noarch/repodata.json");
    EXPECT_NE(r.verdict, Verdict::Valid);
    EXPECT_NE(r.reason.find("FIFO"), std::string::npos) << r.reason;
}

TEST_F(Planted, A13_fifo_in_place_of_the_index_signature) {
    Deadline d(20);
    plant_fifo(noarch("repodata.json.sig"));
    expect(of(verify(), "noarch/repodata.json"), Verdict::BadSigFile, "FIFO");
}

TEST_F(Planted, A13_fifo_in_place_of_the_public_key) {
    Deadline d(20);
    plant_fifo(keys_.keys() / "chan.pub");
    expect(of(verify(), "noarch/repodata.json"), Verdict::BadKey, "FIFO");
}

TEST_F(Planted, A13_fifo_in_place_of_the_state_file) {
    Deadline d(20);
    stdfs::create_directories(t_ / "state");
    ::chmod((t_ / "state").c_str(), 0700);
    plant_fifo(t_ / "state" / "state.json");
    // The state is read before any subdir (it names the subdirs to expect):
    // the whole run stops, naming the FIFO.
    try {
        verify();
        ADD_FAILURE() << "a FIFO in place of the state file was read";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("FIFO"), std::string::npos) << e.what();
    }
}

TEST_F(Planted, A13_index_refuses_a_fifo_package_and_a_fifo_cache) {
    Deadline d(20);
    plant_fifo(noarch("gamma-1.0-0.conda"));
    const auto reports = index_channel(ch(), IndexOptions{});
    bool named = false;
    for (const auto& s : reports)
        for (const auto& p : s.excluded)
            if (p.file == "gamma-1.0-0.conda") named = p.reason.find("FIFO") != std::string::npos;
    EXPECT_TRUE(named);
    plant_fifo(ch() / "noarch" / index_cache_path);
    try {
        index_channel(ch(), IndexOptions{});
        ADD_FAILURE() << "a FIFO in place of the index cache was read";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("FIFO"), std::string::npos) << e.what();
    }
}

TEST_F(Planted, A12_verify_refuses_a_device_in_place_of_a_package) {
    Deadline d(20);
    KeyStore store(keys_.keys());
    Verifier v(store);
    const Result r = v.verify_file("/dev/zero");  // endless data
    expect(r, Verdict::Invalid, "character device");
}
