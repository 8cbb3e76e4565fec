// verify-channel on a signed channel built here: each test changes one thing
// (a byte, a field, the key, the clock, the state) and expects one verdict.
#include <condaguard/channel/verify.hpp>
#include <condaguard/channel/publish.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/trust/sigfile.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <thread>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;
using json = nlohmann::json;

namespace {

const TimePoint t0 = *parse_time("2026-11-25T10:00:00Z");

class Channel : public ::testing::Test {
protected:
    void SetUp() override {
        key_ = &keys_.add("chan");
        build_package(ch() / "noarch", PackageSpec{.name = "alpha", .depends = {"beta"}});
        build_package(ch() / "noarch", PackageSpec{.name = "beta", .format = PackageFormat::TarBz2});
        build_package(ch() / "linux-64", PackageSpec{.name = "gamma", .build = "h0_0", .subdir = "linux-64"});
        sign_index();
        policy_.now = t0 + std::chrono::hours(1);
    }
    void sign_index(TimePoint at = t0) {
        index_channel(ch(), IndexOptions{.jobs = 0,
                                         .signing = IndexSigning{.key_name = KeyName("chan"),
                                                                 .key = key_,
                                                                 .channel_id = "example",
                                                                 .lifetime = std::chrono::hours(12),
                                                                 .sign_packages = true,
                                                                 .signed_at = at}});
    }
    stdfs::path ch() const { return t_ / "channel"; }
    stdfs::path rd(const std::string& sd = "noarch") const { return ch() / sd / "repodata.json"; }

    std::vector<Result> verify() {
        KeyStore store(keys_.keys());
        Verifier v(store);
        v.allow_only(allowed_);
        StateStore state(t_ / "state");
        return verify_channel(ch(), v, state, policy_).all();
    }
    // The result whose path ends with `suffix`.
    Result of(const std::vector<Result>& rs, const std::string& suffix) {
        for (const auto& r : rs)
            if (r.path.ends_with(suffix)) return r;
        return Result{.path = suffix, .verdict = Verdict::Error, .reason = "(no result for this file)"};
    }
    Result index_result(const std::string& sd = "noarch") { return of(verify(), sd + "/repodata.json"); }

    // Edits noarch/repodata.json as the channel owner would and signs it again,
    // so only the guard or record checks can catch the change.
    void resign(const std::function<void(json&)>& edit, const std::string& sd = "noarch") {
        json j = json::parse(read_file(rd(sd)));
        edit(j);
        const std::string bytes = j.dump(2) + "\n";
        write_file(rd(sd), bytes);
        write_file(rd(sd).string() + ".sig", format_sig_file(KeyName("chan"), key_->sign_digest(sha256_bytes(bytes))));
    }
    void expect_index(Verdict v, const std::string& fragment, const std::string& sd = "noarch") {
        Result r = index_result(sd);
        EXPECT_EQ(to_string(r.verdict), to_string(v)) << r.reason;
        EXPECT_NE(r.reason.find(fragment), std::string::npos) << r.reason;
        EXPECT_TRUE(r.path.ends_with(sd + "/repodata.json")) << r.path;
    }

    TempDir t_;
    Keys keys_;
    const PrivateKey* key_ = nullptr;
    ChannelPolicy policy_;
    std::vector<std::string> allowed_;
};

}  // namespace

TEST_F(Channel, SignedChannelIsValid) {
    auto rs = verify();
    ASSERT_EQ(rs.size(), 5u);
    for (const auto& r : rs) EXPECT_EQ(r.verdict, Verdict::Valid) << r.path << ": " << r.reason;
    EXPECT_NE(of(rs, "noarch/repodata.json").reason.find("channel 'example' version 1"), std::string::npos);
    EXPECT_EQ(of(rs, "alpha-1.0-0.conda").key, "chan");
}

TEST_F(Channel, A8_index_edited_after_signing_one_byte) {
    std::string bytes = read_file(rd());
    bytes[bytes.find("\"beta\"") + 1] = 'B';
    write_file(rd(), bytes);
    auto rs = verify();
    EXPECT_EQ(of(rs, "noarch/repodata.json").verdict, Verdict::Invalid);
    EXPECT_EQ(of(rs, "alpha-1.0-0.conda").reason, "(no result for this file)") << "packages of an untrusted index are not judged";
    EXPECT_EQ(of(rs, "linux-64/repodata.json").verdict, Verdict::Valid);
}

TEST_F(Channel, A8_index_edited_dependency_or_hash) {
    for (auto edit : std::vector<std::function<void(json&)>>{
             [](json& j) { j["packages.conda"]["alpha-1.0-0.conda"]["depends"].push_back("evil"); },
             [](json& j) { j["packages.conda"]["alpha-1.0-0.conda"]["sha256"] = std::string(64, 'a'); },
             [](json& j) { j["packages"]["beta-1.0-0.tar.bz2"]["size"] = 1; }}) {
        const std::string original = read_file(rd());
        json j = json::parse(original);
        edit(j);
        write_file(rd(), j.dump(2) + "\n");
        EXPECT_EQ(index_result().verdict, Verdict::Invalid);
        write_file(rd(), original);
    }
}

TEST_F(Channel, A1_stripped_sig_fields) {
    json j = json::parse(read_file(rd()));
    for (auto& [fn, rec] : j["packages.conda"].items()) rec.erase("sig");
    for (auto& [fn, rec] : j["packages"].items()) rec.erase("sig");
    write_file(rd(), j.dump(2) + "\n");
    expect_index(Verdict::Invalid, "digest does not match signature");
}

TEST_F(Channel, A25_reformatted_index_is_not_reserialised) {
    write_file(rd(), json::parse(read_file(rd())).dump() + "\n");  // same content, other whitespace
    EXPECT_EQ(index_result().verdict, Verdict::Invalid);
}

TEST_F(Channel, A1_removed_index_signature_is_a_refused_downgrade) {
    stdfs::remove(rd().string() + ".sig");
    stdfs::remove(rd("linux-64").string() + ".sig");
    expect_index(Verdict::MissingSig, "index is not signed");
    // Once the channel was seen signed here, the unsigned index is called a downgrade.
    sign_index();
    EXPECT_EQ(index_result().verdict, Verdict::Valid);
    stdfs::remove(rd().string() + ".sig");
    expect_index(Verdict::MissingSig, "was signed here before: refusing the downgrade");
}

TEST_F(Channel, A2_removed_package_signature) {
    stdfs::remove(ch() / "noarch" / "beta-1.0-0.tar.bz2.sig");
    auto rs = verify();
    EXPECT_EQ(of(rs, "beta-1.0-0.tar.bz2").verdict, Verdict::MissingSig);
    EXPECT_EQ(of(rs, "alpha-1.0-0.conda").verdict, Verdict::Valid);
}

TEST_F(Channel, A3_index_signed_by_unknown_key) {
    stdfs::remove(keys_.keys() / "chan.pub");
    expect_index(Verdict::MissingKey, "chan.pub");
}

TEST_F(Channel, A5_index_signed_by_disallowed_key) {
    allowed_ = {"release-key"};
    expect_index(Verdict::UntrustedKey, "not allowed here");
    allowed_ = {"chan"};
    EXPECT_EQ(index_result().verdict, Verdict::Valid);
}

TEST_F(Channel, MissingOrMalformedGuardFields) {
    const std::vector<std::pair<std::function<void(json&)>, std::string>> cases{
        {[](json& j) { j["info"].erase("guard"); }, "signed index has no info.guard"},
        {[](json& j) { j["info"]["guard"].erase("version"); }, "info.guard.version is missing"},
        {[](json& j) { j["info"]["guard"]["version"] = "7"; }, "info.guard.version is not a positive integer"},
        {[](json& j) { j["info"]["guard"]["version"] = 0; }, "info.guard.version is not a positive integer"},
        {[](json& j) { j["info"]["guard"].erase("expires"); }, "info.guard.expires is missing"},
        {[](json& j) { j["info"]["guard"]["expires"] = "2026-12-01 10:00"; }, "is not an RFC 3339 UTC time"},
        {[](json& j) { j["info"]["guard"]["signed_at"] = 5; }, "info.guard.signed_at is not a non-empty string"},
        {[](json& j) { j["info"]["guard"]["channel"] = ""; }, "info.guard.channel is not a non-empty string"},
        {[](json& j) { j["info"]["guard"]["subdir"] = "linux-64"; }, "signed for subdir 'linux-64', found in 'noarch'"},
        {[](json& j) { j["info"]["subdir"] = "linux-64"; }, "info.subdir is 'linux-64', expected 'noarch'"},
        {[](json& j) { j["info"]["guard"]["expires"] = "2026-11-25T09:00:00Z"; }, "expires is not after signed_at"},
        {[](json& j) { j["info"] = 3; }, "info is not a JSON object"},
    };
    const std::string original = read_file(rd());
    for (const auto& [edit, fragment] : cases) {
        write_file(rd(), original);
        resign(edit);
        expect_index(Verdict::Invalid, fragment);
    }
}

TEST_F(Channel, A10_expired_index) {
    policy_.now = t0 + std::chrono::hours(12);
    expect_index(Verdict::Expired, "index expired at 2026-11-25T22:00:00Z");
    policy_.allow_expired = true;
    Result r = index_result();
    EXPECT_EQ(r.verdict, Verdict::Valid);
    EXPECT_NE(r.reason.find("EXPIRED, accepted by --allow-expired"), std::string::npos);
}

TEST_F(Channel, A9_lowered_version_is_rollback) {
    const std::string v1 = read_file(rd()), v1sig = read_file(rd().string() + ".sig");
    sign_index(t0 + std::chrono::minutes(5));
    EXPECT_EQ(index_result().verdict, Verdict::Valid);  // version 2 seen
    write_file(rd(), v1);
    write_file(rd().string() + ".sig", v1sig);
    expect_index(Verdict::Rollback, "index version 1 is older than version 2 seen before");
    // An admin reset accepts it once more.
    StateStore(t_ / "state").reset("example");
    EXPECT_EQ(index_result().verdict, Verdict::Valid);
}

TEST_F(Channel, A11_same_version_other_bytes) {
    EXPECT_EQ(index_result().verdict, Verdict::Valid);
    resign([](json& j) { j["packages.conda"]["alpha-1.0-0.conda"]["depends"] = json::array(); });
    expect_index(Verdict::Invalid, "a different index with the same version 1");
}

TEST_F(Channel, A22_other_channel_or_shadowing) {
    policy_.channel_id = "official";
    expect_index(Verdict::Invalid, "index is for channel 'example', expected 'official'");
    policy_.channel_id.reset();
    EXPECT_EQ(index_result().verdict, Verdict::Valid);
    resign([](json& j) {
        j["info"]["guard"]["channel"] = "shadow";
        j["info"]["guard"]["version"] = 99;
    });
    expect_index(Verdict::Invalid, "this location served channel 'example' before, now 'shadow'");
}

TEST_F(Channel, PackageBytesNoLongerMatchRecord) {
    const auto alpha = ch() / "noarch" / "alpha-1.0-0.conda";
    std::string bytes = read_file(alpha);
    bytes[bytes.size() / 2] ^= 1;  // same size, other bytes
    write_file(alpha, bytes);
    Result r = of(verify(), "alpha-1.0-0.conda");
    EXPECT_EQ(r.verdict, Verdict::Invalid);
    EXPECT_EQ(r.reason, "sha256 does not match the signed index");
    write_file(alpha, bytes + "x");
    r = of(verify(), "alpha-1.0-0.conda");
    EXPECT_EQ(r.verdict, Verdict::Invalid);
    EXPECT_NE(r.reason.find("larger than the signed size"), std::string::npos) << r.reason;
}

TEST_F(Channel, A7_replay_of_a_valid_package_under_another_name) {
    // delta 2.0 is published; an attacker serves delta 1.0's bytes and valid .sig as 2.0.
    for (const char* v : {"1.0", "2.0"})
        build_package(ch() / "noarch", PackageSpec{.name = "delta", .version = v, .format = PackageFormat::TarBz2});
    sign_index();
    for (const char* ext : {"", ".sig"})
        stdfs::copy_file(ch() / "noarch" / (std::string("delta-1.0-0.tar.bz2") + ext),
                         ch() / "noarch" / (std::string("delta-2.0-0.tar.bz2") + ext),
                         stdfs::copy_options::overwrite_existing);
    EXPECT_EQ(of(verify(), "delta-2.0-0.tar.bz2").verdict, Verdict::Invalid);
    // Even a record that (wrongly) lists 1.0's digest under the 2.0 name is caught by the archive's own index.json.
    const std::string sha = to_hex(sha256_bytes(read_file(ch() / "noarch" / "delta-1.0-0.tar.bz2")));
    const auto size = stdfs::file_size(ch() / "noarch" / "delta-1.0-0.tar.bz2");
    resign([&](json& j) {
        auto& rec = j["packages"]["delta-2.0-0.tar.bz2"];
        rec["sha256"] = sha;
        rec["size"] = size;
        rec.erase("md5");
        j["info"]["guard"]["version"] = 50;
    });
    Result r = of(verify(), "delta-2.0-0.tar.bz2");
    EXPECT_EQ(r.verdict, Verdict::Invalid);
    EXPECT_NE(r.reason.find("info/index.json says version '1.0' but the file name says '2.0'"), std::string::npos)
        << r.reason;
}

TEST_F(Channel, A18_md5_only_record) {
    resign([](json& j) {
        j["packages"]["beta-1.0-0.tar.bz2"].erase("sha256");
        j["info"]["guard"]["version"] = 2;
    });
    Result r = of(verify(), "beta-1.0-0.tar.bz2");
    EXPECT_EQ(r.verdict, Verdict::Invalid);
    EXPECT_NE(r.reason.find("md5-only records are refused"), std::string::npos);
}

TEST_F(Channel, ListedPackageMissingIsError) {
    stdfs::remove(ch() / "noarch" / "beta-1.0-0.tar.bz2");
    Result r = of(verify(), "beta-1.0-0.tar.bz2");
    EXPECT_EQ(r.verdict, Verdict::Error);
    EXPECT_NE(r.reason.find("listed in the signed index but missing"), std::string::npos);
}

// Records are views into the index; strings with escapes are read unescaped.
TEST_F(Channel, EscapedStringsInRecordsAreReadUnescaped) {
    const std::string text =
        R"({"info": {"subdir": "noarch", "guard": {"channel": "example", "subdir": "noarch", "version": 7,)"
        R"( "signed_at": "2026-11-25T10:00:00Z", "expires": "2026-11-25T22:00:00Z"}},)"
        R"( "packages": {"a\u002db-1.0-0.tar.bz2": {"name": "a-b", "version": "1.\u0030", "build" : "0" ,)"
        R"( "sha256": "x\"y", "size": 5}}})";
    write_file(rd(), text);
    write_file(rd().string() + ".sig", format_sig_file(KeyName("chan"), key_->sign_digest(sha256_bytes(text))));
    KeyStore store(keys_.keys());
    Verifier v(store);
    StateStore state(t_ / "state");
    VerifiedIndex idx = verify_index(ch() / "noarch", "noarch", "here", v, state, policy_);
    ASSERT_EQ(idx.result.verdict, Verdict::Valid) << idx.result.reason;
    ASSERT_EQ(idx.records().size(), 1u);
    const IndexRecord& r = idx.records()[0];
    EXPECT_EQ(r.fn, "a-b-1.0-0.tar.bz2");
    EXPECT_EQ(r.name, "a-b");
    EXPECT_EQ(r.version, "1.0");
    EXPECT_EQ(r.build, "0");
    EXPECT_EQ(r.sha256, "x\"y");
    EXPECT_EQ(r.size, 5u);
}

TEST_F(Channel, IndexOverTheSizeCapIsRefusedBeforeParsing) {
    policy_.max_index_bytes = 100;
    expect_index(Verdict::Invalid, "over the limit of 100");
}

TEST_F(Channel, IndexOnlySkipsPackages) {
    policy_.index_only = true;
    auto rs = verify();
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].verdict, Verdict::Valid);
}

// ---- one meaning per signed index (A25) and bounded parsing (A12) ----

namespace {

// A signed noarch index with `packages_body` as its "packages" object text
// and `extra_top` before it, signed by the channel key.
std::string index_text(const std::string& packages_body, const std::string& guard_extra = "",
                       const std::string& extra_top = "") {
    return R"({"info": {"subdir": "noarch", "guard": {"channel": "example", "subdir": "noarch", "version": 7,)"
           R"( "signed_at": "2026-11-25T10:00:00Z", "expires": "2026-11-25T22:00:00Z")" +
           guard_extra + "}}, " + extra_top + R"("packages": {)" + packages_body + "}}";
}

const std::string rec_a = R"("a-1.0-0.tar.bz2": {"name": "a", "version": "1.0", "build": "0", "sha256": "x", "size": 5})";

}  // namespace

void expect_same_records(std::span<const IndexRecord> a, std::span<const IndexRecord> b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        SCOPED_TRACE(a[i].fn);
        EXPECT_EQ(a[i].fn, b[i].fn);
        EXPECT_EQ(a[i].name, b[i].name);
        EXPECT_EQ(a[i].version, b[i].version);
        EXPECT_EQ(a[i].build, b[i].build);
        EXPECT_EQ(a[i].subdir, b[i].subdir);
        EXPECT_EQ(a[i].sha256, b[i].sha256);
        EXPECT_EQ(a[i].md5, b[i].md5);
        EXPECT_EQ(a[i].raw, b[i].raw);
        EXPECT_EQ(a[i].size, b[i].size);
        EXPECT_EQ(a[i].has_size, b[i].has_size);
        EXPECT_EQ(a[i].timestamp, b[i].timestamp);
        EXPECT_EQ(a[i].has_timestamp, b[i].has_timestamp);
    }
}

class SignedText : public Channel {
protected:
    // Signs `text` as noarch/repodata.json and verifies it, its parse cut
    // into segments of at least `segment_bytes`.
    VerifiedIndex verify_in_segments(const std::string& text, std::size_t segment_bytes) {
        write_file(rd(), text);
        write_file(rd().string() + ".sig", format_sig_file(KeyName("chan"), key_->sign_digest(sha256_bytes(text))));
        KeyStore store(keys_.keys());
        Verifier v(store);
        // A state of its own: texts verified one after another may share a version.
        StateStore state(t_ / ("state-" + std::to_string(++verified_)));
        ChannelPolicy p = policy_;
        p.index_segment_bytes = segment_bytes;
        p.jobs = 2;
        return verify_index(ch() / "noarch", "noarch", "here", v, state, p);
    }
    // Verifies `text` walked whole, and again cut after every record
    // (segments of at least one byte): both must find the same.
    Result verify_text(const std::string& text) {
        const VerifiedIndex whole = verify_in_segments(text, default_index_segment_bytes);
        const VerifiedIndex cut = verify_in_segments(text, 1);
        EXPECT_EQ(to_string(cut.result.verdict), to_string(whole.result.verdict)) << cut.result.reason;
        EXPECT_EQ(cut.result.reason, whole.result.reason);
        expect_same_records(cut.records(), whole.records());
        return whole.result;
    }
    int verified_ = 0;
    void expect_invalid(const std::string& text, const std::string& fragment) {
        Result r = verify_text(text);
        EXPECT_EQ(to_string(r.verdict), "INVALID") << r.reason;
        EXPECT_NE(r.reason.find(fragment), std::string::npos) << r.reason;
        EXPECT_EQ(r.reason.find(r.path), std::string::npos) << "the reason repeats the path: " << r.reason;
    }
};

TEST_F(SignedText, ControlIsValid) { EXPECT_EQ(verify_text(index_text(rec_a)).verdict, Verdict::Valid); }

TEST_F(SignedText, A25_duplicate_packages_conda_key_via_escape) {
    expect_invalid(index_text(rec_a, "", R"("packages.conda": {}, "packages.cond\u0061": {}, )"),
                   "duplicate key 'packages.conda' in the top level");
}

TEST_F(SignedText, A25_duplicate_record_keys_inside_packages) {
    const std::string rec_a_escaped =
        R"("a-1.0-0.tar.b\u007a2": {"name": "a", "version": "1.0", "build": "0", "sha256": "y", "size": 6})";
    expect_invalid(index_text(rec_a + ", " + rec_a_escaped), "duplicate key 'a-1.0-0.tar.bz2' in packages");
    // Out of order first, so the check is not only "each key after the one before".
    const std::string rec_b = R"("b-1.0-0.tar.bz2": {"name": "b", "version": "1.0", "build": "0", "sha256": "x", "size": 5})";
    expect_invalid(index_text(rec_b + ", " + rec_a + ", " + rec_b), "duplicate key 'b-1.0-0.tar.bz2' in packages");
}

TEST_F(SignedText, A25_duplicate_field_inside_one_record) {
    expect_invalid(index_text(R"("a-1.0-0.tar.bz2": {"sha256": "x", "name": "a", "sha256": "y", "size": 5})"),
                   "duplicate key 'sha256' in packages/a-1.0-0.tar.bz2");
    // Anything nested inside a record is checked too.
    expect_invalid(index_text(R"("a-1.0-0.tar.bz2": {"sha256": "x", "extra": [{"k": 1, "\u006b": 2}]})"),
                   "duplicate key 'k'");
}

TEST_F(SignedText, A25_duplicate_key_inside_info_guard) {
    expect_invalid(index_text(rec_a, R"(, "versio\u006e": 99)"), "duplicate key 'version' in info/guard");
}

TEST_F(SignedText, A12_depth_bomb_refused_quickly) {
    Deadline d(10);
    const std::size_t deep = 100'000;
    expect_invalid(index_text(rec_a, "", R"("bomb": )" + std::string(deep, '[') + std::string(deep, ']') + ", "),
                   "not valid JSON");
}

TEST_F(SignedText, A12_oversize_index) {
    policy_.max_index_bytes = 1000;
    expect_invalid(index_text(rec_a, "", R"("pad": ")" + std::string(2000, ' ') + R"(", )"),
                   "over the limit of 1000");
}

namespace {

// A record for file `fn` whose sha256 is `sha` (records differ in their text).
std::string rec(const std::string& fn, const std::string& sha = "x") {
    return "\"" + fn + R"(": {"name": "a", "version": "1.0", "build": "0", "sha256": ")" + sha + R"(", "size": 5})";
}

}  // namespace

// The check compares each key with the one before while keys are sorted, and
// switches to sorting hashes at the first key out of order: duplicates must be
// found on both sides of that switch.
TEST_F(SignedText, A25_duplicate_keys_around_the_break_in_sorted_order) {
    // Sorted up to the duplicate: the neighbour comparison.
    expect_invalid(index_text(rec("a-1.0-0.tar.bz2") + ", " + rec("b-1.0-0.tar.bz2") + ", " + rec("b-1.0-0.tar.bz2", "y")),
                   "duplicate key 'b-1.0-0.tar.bz2' in packages");
    // The key that breaks the order is itself the duplicate of an earlier one.
    expect_invalid(index_text(rec("a-1.0-0.tar.bz2") + ", " + rec("c-1.0-0.tar.bz2") + ", " + rec("a-1.0-0.tar.bz2", "y")),
                   "duplicate key 'a-1.0-0.tar.bz2' in packages");
    // The duplicate comes long after the break, of a key from before it.
    std::string body = rec("m-1.0-0.tar.bz2") + ", " + rec("z-1.0-0.tar.bz2");
    for (int i = 0; i < 300; ++i) body += ", " + rec("p" + std::to_string((i * 7919) % 300) + "-1.0-0.tar.bz2");
    expect_invalid(index_text(body + ", " + rec("m-1.0-0.tar.bz2", "y")), "duplicate key 'm-1.0-0.tar.bz2' in packages");
    // Many distinct keys out of order are not duplicates.
    std::string distinct = rec("z-1.0-0.tar.bz2");
    for (int i = 0; i < 300; ++i) distinct += ", " + rec("p" + std::to_string((i * 7919) % 300) + "-1.0-0.tar.bz2");
    EXPECT_EQ(verify_text(index_text(distinct)).verdict, Verdict::Valid);
}

TEST_F(SignedText, A25_duplicate_field_spelt_with_an_escape_inside_one_record) {
    // Sorted as raw text ("n\\u0061me" < "name"), equal once unescaped.
    expect_invalid(index_text(R"("a-1.0-0.tar.bz2": {"build": "0", "n\u0061me": "a", "name": "b", "sha256": "x", "size": 5})"),
                   "duplicate key 'name' in packages/a-1.0-0.tar.bz2");
    expect_invalid(index_text(R"("a-1.0-0.tar.bz2": {"sha256": "x", "size": 5, "\u0073ha256": "y"})"),
                   "duplicate key 'sha256' in packages/a-1.0-0.tar.bz2");
}

TEST_F(SignedText, A25_duplicate_key_in_an_object_nested_in_a_record) {
    expect_invalid(index_text(R"("a-1.0-0.tar.bz2": {"depends": ["b"], "name": "a", "run_exports": )"
                              R"({"weak": ["c"], "strong": [], "we\u0061k": []}, "sha256": "x", "size": 5})"),
                   "duplicate key 'weak' in packages/a-1.0-0.tar.bz2/run_exports");
    // The same key in sibling objects is not a duplicate.
    EXPECT_EQ(verify_text(index_text(R"("a-1.0-0.tar.bz2": {"x": {"k": 1}, "y": {"k": 1}, "sha256": "x", "size": 5})"))
                  .verdict,
              Verdict::Valid);
}

// Every value is parsed, not only those the records keep: a document the
// DOM parser (and conda's json.loads) would refuse is refused.
TEST_F(SignedText, A25_malformed_json_anywhere_is_invalid) {
    const std::vector<std::string> bad_values{
        "tru", "nul", "falsey", "01", "1.", "-", "1e", "2x", R"("\q")", R"("\u12")", "[1 2]", "[1,]",
        R"({"a" 1})", R"({"a": 1,})", R"({"a": 1 "b": 2})", "{,}", "\"a\x01b\"", "\"\xff\"",
    };
    for (const auto& v : bad_values) {
        SCOPED_TRACE(v);
        expect_invalid(index_text(rec_a, "", R"("extra": )" + v + ", "), "not valid JSON");
        expect_invalid(index_text(R"("a-1.0-0.tar.bz2": {"sha256": "x", "size": 5, "license": )" + v + "}"),
                       "not valid JSON");
    }
    const std::string good = index_text(rec_a);
    for (const std::string& text : {good + "}", good + " x", good + "{}", good.substr(0, good.size() - 1),
                                    good.substr(0, good.size() - 3)}) {
        SCOPED_TRACE(text);
        expect_invalid(text, "not valid JSON");
    }
}

TEST_F(SignedText, A12_nesting_up_to_the_cap_only) {
    Deadline d(10);
    // The top-level object is one level: 63 more arrays reach the cap of 64.
    auto nested = [](std::size_t n) { return R"("deep": )" + std::string(n, '[') + std::string(n, ']') + ", "; };
    EXPECT_EQ(verify_text(index_text(rec_a, "", nested(max_json_depth - 1))).verdict, Verdict::Valid);
    expect_invalid(index_text(rec_a, "", nested(max_json_depth)), "not valid JSON");
}

// ---- a large index is parsed in segments, each proven by its walk --------

namespace {

// An index with the records of `packages` and `conda` (each "KEY": {...}
// text), written as conda's indexers do, with more after them.
std::string two_objects(const std::vector<std::string>& packages, const std::vector<std::string>& conda,
                        const std::string& after = R"("removed": [], "repodata_version": 1)") {
    auto body = [](const std::vector<std::string>& recs) {
        std::string b;
        for (const auto& r : recs) b += (b.empty() ? "\n    " : ",\n    ") + r;
        return b;
    };
    return R"({"info": {"subdir": "noarch", "guard": {"channel": "example", "subdir": "noarch", "version": 7,)"
           R"( "signed_at": "2026-11-25T10:00:00Z", "expires": "2026-11-25T22:00:00Z"}},)" "\n  \"packages\": {" +
           body(packages) + "\n  },\n  \"packages.conda\": {" + body(conda) + "\n  },\n  " + after + "\n}\n";
}

std::string full_rec(int i, const std::string& ext = ".tar.bz2") {
    const std::string fn = "p" + std::to_string(i / 3) + "-1." + std::to_string(i % 3) + "-h" + std::to_string(i) + "_0";
    return "\"" + fn + ext + R"(": {"build": "h)" + std::to_string(i) + R"(_0", "build_number": 0, "depends": ["python >=3.10", "n\u0075mpy"], )"
           R"("license": "BSD", "md5": "0123", "name": "p)" + std::to_string(i / 3) + R"(", "sha256": "ab)" + std::to_string(i) +
           R"(", "size": )" + std::to_string(1000 + i) + R"(, "subdir": "noarch", "timestamp": )" + std::to_string(1700000000000 + i) +
           R"(, "version": "1.)" + std::to_string(i % 3) + "\" }";
}

}  // namespace

// Cut after every record, the walks of the segments give what the whole walk
// gives, record for record (the comparison is in verify_text).
TEST_F(SignedText, A25_index_walked_in_segments_gives_the_records_of_the_whole_walk) {
    std::vector<std::string> packages, conda;
    for (int i = 0; i < 40; ++i) packages.push_back(full_rec(i));
    for (int i = 40; i < 60; ++i) conda.push_back(full_rec(i, ".conda"));
    const std::string text = two_objects(packages, conda);
    EXPECT_EQ(verify_text(text).verdict, Verdict::Valid);
    const VerifiedIndex idx = verify_in_segments(text, 1);
    ASSERT_EQ(idx.result.verdict, Verdict::Valid) << idx.result.reason;
    EXPECT_EQ(idx.records().size(), 60u);
    // One segment per record, the segments proven (not walked again whole).
    // One segment per record, and one more at each end of a packages object.
    EXPECT_EQ(idx.parse_segments(), 62u);
    EXPECT_GT(verify_in_segments(text, 2000).parse_segments(), 2u);
    EXPECT_EQ(verify_in_segments(text, default_index_segment_bytes).parse_segments(), 1u);
}

// A repeated record key is refused whichever segments its two records fall
// in: the keys of a packages object are checked across all its segments, in
// order (sorted: each against the one before, across the cuts too) or not
// (their hashes merged).
TEST_F(SignedText, A25_duplicate_record_across_segments) {
    const std::string a = rec("a-1.0-0.tar.bz2"), b = rec("b-1.0-0.tar.bz2"), c = rec("c-1.0-0.tar.bz2");
    const std::string a_again = rec("a-1.0-0.tar.b\\u007a2", "y");
    expect_invalid(two_objects({a, b, c, a_again}, {}), "duplicate key 'a-1.0-0.tar.bz2' in packages");
    expect_invalid(two_objects({a, b, rec("b-1.0-0.tar.bz2", "y"), c}, {}), "duplicate key 'b-1.0-0.tar.bz2' in packages");
    expect_invalid(two_objects({c, a, b, rec("c-1.0-0.tar.bz2", "y")}, {}), "duplicate key 'c-1.0-0.tar.bz2' in packages");
    expect_invalid(two_objects({a}, {b, c, rec("b-1.0-0.tar.bz2", "y")}), "duplicate key 'b-1.0-0.tar.bz2' in packages.conda");
    // The same key in "packages" and "packages.conda" is two objects, as in the whole walk.
    EXPECT_EQ(verify_text(two_objects({a, b}, {a, b})).verdict, Verdict::Valid);
}

// Many keys out of order are checked in buckets of their hashes, on two
// threads for large sets (each half of the buckets): a repeated key is found
// in either half.
TEST_F(SignedText, A25_duplicate_among_many_unsorted_keys_in_either_half) {
    Deadline d(60);
    const std::size_t n = 70'000;
    std::vector<std::string> fns;
    for (std::size_t i = 0; i < n; ++i) fns.push_back("p" + std::to_string((i * 7919) % n) + "-1.0-0.tar.bz2");
    auto text_with = [&](const std::string& again) {
        std::string body;
        for (const auto& fn : fns) body += (body.empty() ? "" : ",\n") + rec(fn);
        if (!again.empty()) body += ",\n" + rec(again, "y");
        return index_text(body);
    };
    // One repeated key whose hash is in the lower half of the buckets, one in the upper.
    std::string lower, upper;
    for (const auto& fn : fns) {
        const bool top = (std::hash<std::string_view>{}(fn) >> 63) != 0;
        if (top && upper.empty()) upper = fn;
        if (!top && lower.empty()) lower = fn;
    }
    ASSERT_FALSE(lower.empty() || upper.empty());
    for (std::size_t segment_bytes : {std::size_t{64} << 10, default_index_segment_bytes}) {
        SCOPED_TRACE(segment_bytes);
        const VerifiedIndex ok = verify_in_segments(text_with(""), segment_bytes);
        EXPECT_EQ(ok.result.verdict, Verdict::Valid) << ok.result.reason;
        EXPECT_EQ(ok.records().size(), n);
        for (const auto& again : {lower, upper}) {
            const Result r = verify_in_segments(text_with(again), segment_bytes).result;
            EXPECT_EQ(to_string(r.verdict), "INVALID");
            EXPECT_NE(r.reason.find("duplicate key '" + again + "' in packages"), std::string::npos) << r.reason;
        }
    }
}

// The top level's keys are checked across segments too: a second "info" or
// "packages" after a cut one is refused.
TEST_F(SignedText, A25_duplicate_top_level_key_across_segments) {
    const std::string a = rec("a-1.0-0.tar.bz2"), b = rec("b-1.0-0.tar.bz2"), c = rec("c-1.0-0.tar.bz2");
    expect_invalid(two_objects({a, b, c}, {a, b}, R"("inf\u006f": {"subdir": "noarch"})"),
                   "duplicate key 'info' in the top level");
    expect_invalid(two_objects({a, b, c}, {a, b}, R"("packages": {})"), "duplicate key 'packages' in the top level");
    expect_invalid(two_objects({a, b, c}, {a, b}, R"("packages.conda": {})"),
                   "duplicate key 'packages.conda' in the top level");
}

// The depth cap counts the levels a segment's walk stands in for: a record
// in a later segment may nest to the cap and no deeper.
TEST_F(SignedText, A12_nesting_cap_inside_a_later_segment) {
    Deadline d(10);
    const std::string a = rec("a-1.0-0.tar.bz2"), b = rec("b-1.0-0.tar.bz2");
    // Top level, packages, the record: three levels; the arrays take the rest.
    auto deep = [](std::size_t n) {
        return R"("c-1.0-0.tar.bz2": {"name": "c", "x": )" + std::string(n, '[') + std::string(n, ']') + "}";
    };
    EXPECT_EQ(verify_text(two_objects({a, b, deep(max_json_depth - 3)}, {})).verdict, Verdict::Valid);
    expect_invalid(two_objects({a, b, deep(max_json_depth - 2)}, {}), "not valid JSON");
}

// A place that only looks like the end of a record (inside a string, or
// after an object nested in a record) is disproved by the walk of its
// segment, and the index is walked whole instead: same verdict, same records.
TEST_F(SignedText, A25_false_cuts_are_disproved_and_walked_whole) {
    const std::string a = rec("a-1.0-0.tar.bz2"), b = rec("b-1.0-0.tar.bz2");
    const std::vector<std::string> odd{
        R"("c-1.0-0.tar.bz2": {"name": "c", "license": "x}, ", "sha256": "x", "size": 5})",
        R"("c-1.0-0.tar.bz2": {"name": "c", "run_exports": {"weak": ["d"]}, "sha256": "x", "size": 5})",
        R"("c-1.0-0.tar.bz2": {"name": "c", "x": [{}, "y"], "sha256": "x", "size": 5})",
    };
    for (const auto& c : odd) {
        SCOPED_TRACE(c);
        const std::string text = two_objects({a, b, c}, {});
        const Result r = verify_text(text);
        EXPECT_EQ(r.verdict, Verdict::Valid) << r.reason;
        EXPECT_EQ(verify_in_segments(text, 1).parse_segments(), 1u);
    }
    // Objects among the members of the top level, or of info, end in the
    // same bytes as records do: walked from the right edge, they are not
    // taken for records.
    const std::string info_first =
        R"({"info": {"subdir": "noarch", "guard": {"channel": "example", "subdir": "noarch", "version": 7,)"
        R"( "signed_at": "2026-11-25T10:00:00Z", "expires": "2026-11-25T22:00:00Z"}, "more": {}},)"
        R"( "packages": {)" + a + ", " + b + "}}";
    EXPECT_EQ(verify_text(info_first).verdict, Verdict::Valid);
    const std::string objects_after = two_objects({a, b}, {}, R"("x": {}, "y": {"z": 1}, "removed": [])");
    EXPECT_EQ(verify_text(objects_after).verdict, Verdict::Valid);
    EXPECT_GT(verify_in_segments(objects_after, 1).parse_segments(), 4u);
    // A cut that is disproved does not hide a fault elsewhere.
    expect_invalid(two_objects({a, odd[0], rec("a-1.0-0.tar.bz2", "y")}, {}), "duplicate key 'a-1.0-0.tar.bz2'");
}

// Each record's raw text is its object exactly as signed, whole or in segments.
TEST_F(SignedText, RecordRawTextAndTimestamp) {
    std::vector<std::string> packages{full_rec(1), full_rec(2),
                                      R"("q-1.0-0.tar.bz2": {"name": "q", "timestamp": -1, "sha256": "x", "size": 5 })",
                                      R"("r-1.0-0.tar.bz2": { "timestamp": 1.5e3, "sha256": "x" , "size": 5}  )",
                                      R"("s-1.0-0.tar.bz2": {})"};
    const std::string text = two_objects(packages, {full_rec(3, ".conda")});
    for (std::size_t segment_bytes : {std::size_t{1}, default_index_segment_bytes}) {
        SCOPED_TRACE(segment_bytes);
        const VerifiedIndex idx = verify_in_segments(text, segment_bytes);
        ASSERT_EQ(idx.result.verdict, Verdict::Valid) << idx.result.reason;
        const json doc = json::parse(text);
        ASSERT_EQ(idx.records().size(), 6u);
        for (const IndexRecord& r : idx.records()) {
            SCOPED_TRACE(r.fn);
            const json& want = doc.contains("packages") && doc["packages"].contains(std::string(r.fn))
                                   ? doc["packages"][std::string(r.fn)]
                                   : doc["packages.conda"][std::string(r.fn)];
            EXPECT_EQ(parse_json(r.raw, JsonLimits{.max_bytes = 1 << 20}), want);
            // A view into the signed bytes themselves.
            EXPECT_NE(text.find(r.raw), std::string::npos);
            EXPECT_EQ(r.raw.front(), '{');
            EXPECT_EQ(r.raw.back(), '}');
        }
        EXPECT_TRUE(idx.records()[0].has_timestamp);
        EXPECT_EQ(idx.records()[0].timestamp, 1700000000001u);
        EXPECT_FALSE(idx.records()[2].has_timestamp);  // -1
        EXPECT_FALSE(idx.records()[3].has_timestamp);  // 1.5e3
        EXPECT_FALSE(idx.records()[4].has_timestamp);
        EXPECT_EQ(idx.records()[4].raw, "{}");
    }
}

// ---- nothing skipped silently (A1, A11) ----

TEST_F(Channel, A1_subdir_replaced_by_a_symlink_to_a_valid_copy) {
    EXPECT_EQ(index_result("linux-64").verdict, Verdict::Valid);  // seen signed
    stdfs::rename(ch() / "linux-64", t_ / "copy");
    stdfs::create_directory_symlink(t_ / "copy", ch() / "linux-64");
    expect_index(Verdict::Invalid, "subdir linux-64 is a symbolic link (subdirs are never followed); channel "
                                   "'example' was signed here before", "linux-64");
    // Even one never seen before is reported, not skipped.
    stdfs::create_directory_symlink(t_ / "copy", ch() / "osx-64");
    expect_index(Verdict::Invalid, "subdir osx-64 is a symbolic link", "osx-64");
}

TEST_F(Channel, A1_subdir_deleted) {
    EXPECT_EQ(index_result("linux-64").verdict, Verdict::Valid);
    stdfs::remove_all(ch() / "linux-64");
    expect_index(Verdict::MissingSig, "subdir linux-64 is gone; channel 'example' was signed here before", "linux-64");
    EXPECT_EQ(index_result("noarch").verdict, Verdict::Valid);
}

TEST_F(Channel, A1_subdir_index_deleted_or_unsigned) {
    EXPECT_EQ(index_result("linux-64").verdict, Verdict::Valid);
    stdfs::remove(rd("linux-64").string() + ".sig");
    expect_index(Verdict::MissingSig, "refusing the downgrade", "linux-64");
    stdfs::remove(rd("linux-64"));
    expect_index(Verdict::MissingSig, "index is missing, but subdir linux-64 was signed here before", "linux-64");
}

TEST_F(Channel, A11_subdir_replaced_by_a_file) {
    EXPECT_EQ(index_result("linux-64").verdict, Verdict::Valid);
    stdfs::remove_all(ch() / "linux-64");
    write_file(ch() / "linux-64", "not a directory");
    expect_index(Verdict::Invalid, "subdir linux-64 is a regular file, not a directory", "linux-64");
}

TEST_F(Channel, A1_report_lists_the_union_of_remembered_and_present_subdirs) {
    verify();
    stdfs::remove_all(ch() / "linux-64");
    KeyStore store(keys_.keys());
    Verifier v(store);
    StateStore state(t_ / "state");
    const ChannelReport report = verify_channel(ch(), v, state, policy_);
    ASSERT_EQ(report.subdirs.size(), 2u);
    EXPECT_EQ(report.subdirs[0].subdir, "linux-64");
    EXPECT_EQ(report.subdirs[0].index.verdict, Verdict::MissingSig);
    EXPECT_EQ(report.subdirs[1].subdir, "noarch");
}

// A14: the packages of a subdir are read through the descriptor its index
// was read through. The verifier is held (the state lock, taken by the test,
// stops it in state.record right after the index's signature was read)
// while the subdir is renamed away and replaced by a link to a copy in which
// one package's bytes and another's .sig were changed. Reading by path would
// follow the link: gamma would be INVALID (its digest), delta BAD_SIG_FILE.
TEST_F(Channel, A14_packages_are_read_through_the_subdir_descriptor) {
    Deadline d(20);
    build_package(ch() / "linux-64", PackageSpec{.name = "delta", .build = "h0_0", .subdir = "linux-64"});
    sign_index();
    const stdfs::path evil = t_ / "evil";
    stdfs::copy(ch() / "linux-64", evil, stdfs::copy_options::recursive);
    const stdfs::path gamma = evil / "gamma-1.0-h0_0.conda";
    std::string bytes = read_file(gamma);
    bytes[bytes.size() / 2] ^= 0x01;
    write_file(gamma, bytes);
    write_file(evil / "delta-1.0-h0_0.conda.sig", "not a signature\n");

    stdfs::create_directory(t_ / "state");
    stdfs::permissions(t_ / "state", stdfs::perms::owner_all, stdfs::perm_options::replace);
    fs::Fd lock = fs::open_raw(t_ / "state" / "state.lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
    ASSERT_TRUE(lock);
    ASSERT_EQ(::flock(lock.get(), LOCK_EX), 0);
    // linux-64 sorts before noarch: it is the first subdir verified.
    fs::Fd watch(::inotify_init1(IN_CLOEXEC));
    ASSERT_TRUE(watch);
    ASSERT_GE(::inotify_add_watch(watch.get(), (ch() / "linux-64" / "repodata.json.sig").c_str(), IN_CLOSE_NOWRITE), 0);

    std::vector<Result> results;
    std::jthread verifier([&] { results = verify(); });
    alignas(inotify_event) char event[sizeof(inotify_event) + NAME_MAX + 1];
    ASSERT_GT(::read(watch.get(), event, sizeof event), 0);
    stdfs::rename(ch() / "linux-64", t_ / "moved");
    stdfs::create_directory_symlink(evil, ch() / "linux-64");
    lock.reset();
    verifier.join();

    for (const std::string fn : {"linux-64/repodata.json", "gamma-1.0-h0_0.conda", "delta-1.0-h0_0.conda"}) {
        const Result r = of(results, fn);
        EXPECT_EQ(to_string(r.verdict), to_string(Verdict::Valid)) << r.path << ": " << r.reason;
    }
}
