// The install gate on a signed channel built here and reached through
// file:// URLs (the same checks as HTTP; the transfer itself is tested in
// tests/fetch). Each test changes one thing and expects one verdict, and a
// refusal must leave the package directory exactly as it was.
#include <condaguard/channel/publish.hpp>
#include <condaguard/install/gate.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/signer.hpp>

#include "../support/fault_server.hpp"
#include "../support/nginx.hpp"
#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <fcntl.h>
#include <fstream>
#include <linux/fs.h>
#include <map>
#include <set>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;
using json = nlohmann::json;

namespace {

const TimePoint t0 = *parse_time("2026-11-25T10:00:00Z");

// Every path under `root` with its kind, mode and content: what "unchanged" means.
std::map<std::string, std::string> snapshot(const stdfs::path& root) {
    std::map<std::string, std::string> out;
    if (!stdfs::exists(root)) return out;
    for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
        const auto& p = it->path();
        const auto st = stdfs::symlink_status(p);
        std::string v = std::to_string(static_cast<int>(st.type())) + ":" +
                        std::to_string(static_cast<unsigned>(st.permissions()));
        if (stdfs::is_symlink(st)) v += "->" + stdfs::read_symlink(p).string();
        else if (stdfs::is_regular_file(st)) v += ":" + to_hex(sha256_bytes(read_file(p)));
        out[stdfs::relative(p, root).string()] = v;
    }
    return out;
}

// An info/index.json that claims alpha-1.0-0.
constexpr const char* alpha_index = R"({"name":"alpha","version":"1.0","build":"0"})";

// The names at the top level of `dir`.
std::set<std::string> top_level(const stdfs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : stdfs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
}

class Gate : public ::testing::Test {
protected:
    void SetUp() override {
        key_ = &keys_.add("chan");
        alpha_ = build_package(ch() / "noarch", PackageSpec{.name = "alpha", .depends = {"beta"}});
        beta_ = build_package(ch() / "noarch", PackageSpec{.name = "beta", .format = PackageFormat::TarBz2});
        sign_index();
        env_.keys_dir = keys_.keys();
        env_.state_dir = t_ / "state";
        env_.home = t_.path();
        env_.clock = [this] { return now_; };
        options_.pkgs_dirs = {pkgs()};
        options_.index_cache = t_ / "state" / "index-cache";
        options_.trust_for = [this](const std::string&) { return trust_; };
    }
    void sign_index(TimePoint at = t0, const std::string& id = "example") {
        index_channel(ch(), IndexOptions{.jobs = 1,
                                         .signing = IndexSigning{.key_name = KeyName("chan"),
                                                                 .key = key_,
                                                                 .channel_id = id,
                                                                 .lifetime = std::chrono::hours(12),
                                                                 .sign_packages = true,
                                                                 .signed_at = at}});
    }
    stdfs::path ch() const { return t_ / "channel"; }
    stdfs::path pkgs() const { return t_ / "pkgs"; }
    std::string url(const stdfs::path& pkg) const { return "file://" + pkg.string(); }
    // conda-forge today: no signature anywhere in the channel.
    void strip_signatures() const {
        for (const auto& e : stdfs::directory_iterator(ch() / "noarch"))
            if (e.path().extension() == ".sig") stdfs::remove(e.path());
    }
    // The policy's "signatures: none" for the channel.
    void allow_unsigned() { trust_.unsigned_by_policy = ChannelTrust::Unsigned{.rule = "conda-forge", .source = rule_source}; }
    const std::string rule_source = "/etc/conda/guard.yaml:7:17";

    GateReport gate(const std::vector<std::string>& urls) {
        std::vector<PackageUrl> ps;
        for (const auto& u : urls) ps.push_back(parse_package_url(u, t_.path()));
        return run_gate(ps, options_, env_);
    }
    Result one(const stdfs::path& pkg) { return one_url(url(pkg)); }
    Result one_url(const std::string& u) {
        auto r = gate({u});
        EXPECT_EQ(r.packages.size(), 1u);
        return r.packages.at(0);
    }
    void expect_read_only_claimant_refused(bool own_folder, const std::string& fragment);
    // Runs the gate on `pkg`, expects `v` with `fragment` in the reason and the package directory unchanged.
    void expect_refused(const stdfs::path& pkg, Verdict v, const std::string& fragment) {
        const auto before = snapshot(pkgs());
        const Result r = one(pkg);
        EXPECT_EQ(to_string(r.verdict), to_string(v)) << r.reason;
        EXPECT_NE(r.reason.find(fragment), std::string::npos) << r.reason;
        const auto after = snapshot(pkgs());
        // A first run may create the empty package directory itself; nothing of the package may be in it.
        for (const auto& [path, what] : after) {
            if (path == "urls.txt" || path.starts_with(".condaguard")) continue;
            EXPECT_TRUE(before.count(path) && before.at(path) == what) << "changed: " << path;
        }
        for (const auto& [path, what] : before) EXPECT_TRUE(after.count(path)) << "removed: " << path;
    }

    TempDir t_;
    Keys keys_;
    const PrivateKey* key_ = nullptr;
    stdfs::path alpha_, beta_;
    Environment env_;
    TimePoint now_ = t0 + std::chrono::hours(1);
    ChannelTrust trust_;
    GateOptions options_;
};

TEST_F(Gate, GoodPackageLandsInCondasLayout) {
    const Result r = one(alpha_);
    ASSERT_EQ(to_string(r.verdict), "VALID") << r.reason;
    const std::string fn = alpha_.filename().string();
    EXPECT_EQ(read_file(pkgs() / fn), read_file(alpha_));
    EXPECT_EQ(read_file(pkgs() / (fn + ".sig")), read_file(alpha_.string() + ".sig"));
    const stdfs::path folder = pkgs() / "alpha-1.0-0";
    EXPECT_TRUE(stdfs::is_regular_file(folder / "info" / "index.json"));
    EXPECT_EQ(read_file(folder / "bin" / "tool"), "#!/bin/sh\necho tool\n");
    const json rec = json::parse(read_file(folder / "info" / "repodata_record.json"));
    EXPECT_EQ(rec["fn"], fn);
    EXPECT_EQ(rec["name"], "alpha");
    EXPECT_EQ(rec["url"], url(alpha_));
    EXPECT_EQ(rec["sha256"], to_hex(sha256_bytes(read_file(alpha_))));
    EXPECT_EQ(rec["depends"], json::array({"beta"}));
    EXPECT_NE(read_file(pkgs() / "urls.txt").find(url(alpha_) + "\n"), std::string::npos);
}

TEST_F(Gate, SeveralPackagesInOneRun) {
    const auto rep = gate({url(alpha_), url(beta_)});
    ASSERT_EQ(rep.packages.size(), 2u);
    for (const auto& r : rep.packages) EXPECT_EQ(to_string(r.verdict), "VALID") << r.path << ": " << r.reason;
    EXPECT_TRUE(stdfs::is_directory(pkgs() / "beta-1.0-0" / "info"));
}

TEST_F(Gate, A2_missing_package_signature) {
    stdfs::remove(alpha_.string() + ".sig");
    expect_refused(alpha_, Verdict::MissingSig, ".sig in the channel folder");  // file://: no HTTP status to show
}

TEST_F(Gate, A3_key_absent) {
    stdfs::remove(keys_.keys() / "chan.pub");
    expect_refused(alpha_, Verdict::MissingKey, "");
}

TEST_F(Gate, A5_key_not_allowed_for_channel) {
    trust_.allowed_keys = {"other"};
    expect_refused(alpha_, Verdict::UntrustedKey, "does not allow");
}

TEST_F(Gate, A5_key_allowed_by_fingerprint) {
    trust_.allowed_keys = {"sha256:" + key_->public_key().fingerprint()};
    EXPECT_EQ(one(alpha_).verdict, Verdict::Valid);
}

TEST_F(Gate, A21_revoked_key_refused_first) {
    options_.revoked = [this](const std::string& fp) -> std::optional<Revocation> {
        if (fp == key_->public_key().fingerprint()) return Revocation{.reason = "laptop stolen", .date = "2026-11-01"};
        return std::nullopt;
    };
    expect_refused(alpha_, Verdict::BadKey, "revoked");
}

TEST_F(Gate, A20_revoked_trust_anchor_refuses_the_index_before_anything_else) {
    // The key in the keys directory is the anchor; once revoked, nothing it
    // signed is used, the index included, even where its signature checks out.
    options_.revoked = [this](const std::string& fp) -> std::optional<Revocation> {
        if (fp == key_->public_key().fingerprint()) return Revocation{.reason = "retired", .date = "2026-01-01"};
        return std::nullopt;
    };
    const auto before = snapshot(pkgs());
    const auto rep = gate({url(alpha_)});
    EXPECT_EQ(to_string(rep.indexes.at(0).verdict), "BAD_KEY") << rep.indexes.at(0).reason;
    EXPECT_NE(rep.indexes.at(0).reason.find("revoked since 2026-01-01: retired"), std::string::npos);
    EXPECT_EQ(to_string(rep.packages.at(0).verdict), "BAD_KEY");
    EXPECT_TRUE(rep.placed.empty());
}

TEST_F(Gate, A8_package_bytes_changed) {
    std::string bytes = read_file(alpha_);
    bytes[bytes.size() / 2] ^= 1;
    write_file(alpha_, bytes);
    expect_refused(alpha_, Verdict::Invalid, "sha256");
}

TEST_F(Gate, A12_package_longer_than_record) {
    write_file(alpha_, read_file(alpha_) + "x");
    expect_refused(alpha_, Verdict::Invalid, "larger");
}

TEST_F(Gate, A1_unsigned_index_refused_when_the_policy_requires_one) {
    stdfs::remove(ch() / "noarch" / "repodata.json.sig");
    trust_.index_required = true;
    expect_refused(alpha_, Verdict::MissingSig, "requires a signed index");
}

TEST_F(Gate, A1_stripped_index_signature_after_a_signed_one_is_a_refused_downgrade) {
    ASSERT_EQ(to_string(one(alpha_).verdict), "VALID");
    stdfs::remove(ch() / "noarch" / "repodata.json.sig");
    expect_refused(beta_, Verdict::MissingSig, "signed here before");
}

TEST_F(Gate, UnsignedIndexOfAChannelNeverSeenSigned_PackagesStandOnTheirOwnSignatures) {
    stdfs::remove(ch() / "noarch" / "repodata.json.sig");
    const auto rep = gate({url(alpha_)});
    EXPECT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_NE(rep.indexes.at(0).reason.find("not signed"), std::string::npos) << rep.indexes.at(0).reason;
    stdfs::remove(beta_.string() + ".sig");
    expect_refused(beta_, Verdict::MissingSig, ".sig");
}

TEST_F(Gate, A7_unsigned_index_cannot_rename_a_signed_package) {
    // Without a signed index the record is the attacker's: beta's signed bytes
    // served as alpha, with a record that matches them. The archive's own
    // info/index.json gives it away.
    stdfs::remove(ch() / "noarch" / "repodata.json.sig");
    json rd = json::parse(read_file(ch() / "noarch" / "repodata.json"));
    const std::string a = alpha_.filename().string(), b = beta_.filename().string();
    const stdfs::path fake = ch() / "noarch" / "alpha-1.0-0.tar.bz2";
    json rec = rd["packages"][b];
    rec["name"] = "alpha";
    rd["packages"]["alpha-1.0-0.tar.bz2"] = rec;
    write_file(ch() / "noarch" / "repodata.json", rd.dump());
    stdfs::copy_file(beta_, fake);
    stdfs::copy_file(beta_.string() + ".sig", fake.string() + ".sig");
    expect_refused(fake, Verdict::Invalid, "index.json");
    (void)a;
}

TEST_F(Gate, A10_expired_index) {
    now_ = t0 + std::chrono::hours(13);
    expect_refused(alpha_, Verdict::Expired, "expired");
}

TEST_F(Gate, A10_index_older_than_max_index_age) {
    options_.max_index_age = std::chrono::minutes(30);
    expect_refused(alpha_, Verdict::Expired, "max_index_age");
}

TEST_F(Gate, A9_rollback_to_older_index) {
    sign_index(t0 + std::chrono::minutes(10));  // version 2
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    const std::string v2 = read_file(ch() / "noarch" / "repodata.json");
    // Serve version 1 again: an older signed index kept by a mirror.
    stdfs::remove_all(ch());
    alpha_ = build_package(ch() / "noarch", PackageSpec{.name = "alpha", .depends = {"beta"}});
    build_package(ch() / "noarch", PackageSpec{.name = "beta", .format = PackageFormat::TarBz2});
    sign_index();
    ASSERT_NE(read_file(ch() / "noarch" / "repodata.json"), v2);
    expect_refused(alpha_, Verdict::Rollback, "older");
}

TEST_F(Gate, A22_index_of_another_channel) {
    trust_.channel_id = "conda-forge";
    expect_refused(alpha_, Verdict::Invalid, "expected 'conda-forge'");
}

TEST_F(Gate, A7_signed_bytes_of_another_package_under_this_name) {
    // The owner's key signed beta's bytes; an attacker serves them (with
    // their valid .sig) as alpha and gets a record for them signed... here
    // the record stays alpha's, so the digest gives it away.
    write_file(alpha_, read_file(beta_));
    write_file(alpha_.string() + ".sig", read_file(beta_.string() + ".sig"));
    expect_refused(alpha_, Verdict::Invalid, "");
}

TEST_F(Gate, NotInTheSignedIndex) {
    const auto extra = build_package(t_ / "elsewhere" / "noarch", PackageSpec{.name = "gamma"});
    stdfs::copy_file(extra, ch() / "noarch" / extra.filename());
    expect_refused(ch() / "noarch" / extra.filename(), Verdict::Invalid, "not in the signed index");
}

TEST_F(Gate, A15_explicit_hash_must_agree_with_signed_record) {
    const auto before = snapshot(pkgs());
    auto rep = gate({url(alpha_) + "#" + std::string(64, 'a')});
    EXPECT_EQ(rep.packages.at(0).verdict, Verdict::Invalid) << rep.packages.at(0).reason;
    EXPECT_NE(rep.packages.at(0).reason.find("#sha256"), std::string::npos);
    rep = gate({url(alpha_) + "#" + to_hex(sha256_bytes(read_file(alpha_)))});
    EXPECT_EQ(rep.packages.at(0).verdict, Verdict::Valid) << rep.packages.at(0).reason;
}

// The channel's own key signs a package whose archive tries to leave its
// folder: every signature is good, and extraction still refuses it.
TEST_F(Gate, A16_signed_archive_escaping_its_folder_is_refused) {
    const json index{{"name", "evil"}, {"version", "1.0"}, {"build", "0"}, {"build_number", 0},
                     {"subdir", "noarch"}, {"depends", json::array()}};
    const std::string tar = tar_member("info/index.json", index.dump()) +
                            tar_member("lib/evil", "", '2', TarHeaderExtras{.link = "../../../outside"}) +
                            tar_member("lib/evil/x", "pwned") + tar_end();
    const stdfs::path p = build_raw_package(ch() / "noarch", "evil-1.0-0", PackageFormat::TarBz2, tar);
    const std::string bytes = read_file(p);
    json rd = json::parse(read_file(ch() / "noarch" / "repodata.json"));
    json rec = index;
    rec["sha256"] = to_hex(sha256_bytes(bytes));
    rec["size"] = bytes.size();
    rd["packages"]["evil-1.0-0.tar.bz2"] = rec;
    const std::string rd_bytes = rd.dump();
    write_file(ch() / "noarch" / "repodata.json", rd_bytes);
    write_file(ch() / "noarch" / "repodata.json.sig",
               format_sig_file(KeyName("chan"), key_->sign_digest(sha256_bytes(rd_bytes))));
    write_file(p.string() + ".sig", format_sig_file(KeyName("chan"), key_->sign_digest(sha256_bytes(bytes))));
    expect_refused(p, Verdict::Invalid, "lib/evil");
    EXPECT_FALSE(stdfs::exists(t_ / "outside"));
}

TEST_F(Gate, A4_downloaded_sig_naming_a_key_outside_the_keys_directory) {
    write_file(alpha_.string() + ".sig", "../../tmp/x " + base64_encode(std::vector<unsigned char>(256, 1)) + "\n");
    expect_refused(alpha_, Verdict::BadSigFile, "");
}

TEST_F(Gate, A17_malformed_downloaded_sig) {
    write_file(alpha_.string() + ".sig", "chan not-base64!! extra\n");
    expect_refused(alpha_, Verdict::BadSigFile, "");
}

TEST_F(Gate, OneFileNameTwiceInOneRunIsRefused) {
    const stdfs::path other = t_ / "mirror" / "noarch" / alpha_.filename();
    stdfs::create_directories(other.parent_path());
    stdfs::copy_file(alpha_, other);
    const auto rep = gate({url(alpha_), url(other)});
    EXPECT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_EQ(to_string(rep.packages.at(1).verdict), "ERROR");
    EXPECT_NE(rep.packages.at(1).reason.find("asked for twice"), std::string::npos) << rep.packages.at(1).reason;
}

TEST_F(Gate, MinAgeRefusesFreshPackages) {
    options_.min_age = std::chrono::hours(24 * 365 * 100);
    expect_refused(alpha_, Verdict::Invalid, "min_age");
}

TEST_F(Gate, LinkScriptsRefusedByPolicy) {
    const auto p = build_package(ch() / "noarch",
                                 PackageSpec{.name = "scripted",
                                             .files = {{"bin/.scripted-post-link.sh", "echo owned\n"}}});
    sign_index();
    options_.refuse_link_scripts = true;
    expect_refused(p, Verdict::Invalid, "post-link");
    options_.refuse_link_scripts = false;
    EXPECT_EQ(one(p).verdict, Verdict::Valid);
}

TEST_F(Gate, A19_link_script_in_noarch_python_scripts_refused) {
    // conda links a noarch: python package's python-scripts/X to bin/X, and
    // then runs bin/.NAME-post-link.sh; on Windows the script is
    // Scripts/.NAME-post-link.bat.
    const auto py = build_package(ch() / "noarch",
                                  PackageSpec{.name = "sneaky",
                                              .files = {{"python-scripts/.sneaky-post-link.sh", "echo owned\n"}},
                                              .index_overrides = {{"noarch", "python"}}});
    const auto win = build_package(ch() / "noarch",
                                   PackageSpec{.name = "sneakier",
                                               .files = {{"Scripts/.sneakier-pre-unlink.bat", "echo owned\n"}}});
    sign_index();
    options_.refuse_link_scripts = true;
    expect_refused(py, Verdict::Invalid, "post-link");
    expect_refused(win, Verdict::Invalid, "pre-unlink");
}

TEST_F(Gate, A8_min_age_needs_a_signed_index_timestamp) {
    // With an unsigned index the record's timestamp is whatever the server says.
    stdfs::remove(ch() / "noarch" / "repodata.json.sig");
    json rd = json::parse(read_file(ch() / "noarch" / "repodata.json"));
    for (auto& [fn, rec] : rd["packages"].items()) rec["timestamp"] = 1000;
    for (auto& [fn, rec] : rd["packages.conda"].items()) rec["timestamp"] = 1000;
    write_file(ch() / "noarch" / "repodata.json", rd.dump());
    options_.min_age = std::chrono::hours(24);
    expect_refused(alpha_, Verdict::Invalid, "min_age");
}

TEST_F(Gate, A14_tampered_cached_tarball_is_replaced) {
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    const std::string fn = alpha_.filename().string();
    std::string bytes = read_file(pkgs() / fn);
    bytes[bytes.size() / 2] ^= 1;
    write_file(pkgs() / fn, bytes);
    write_file(pkgs() / "alpha-1.0-0" / "bin" / "tool", "#!/bin/sh\necho evil\n");
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    EXPECT_EQ(read_file(pkgs() / fn), read_file(alpha_));
    EXPECT_EQ(read_file(pkgs() / "alpha-1.0-0" / "bin" / "tool"), "#!/bin/sh\necho tool\n");
}

TEST_F(Gate, A14_extracted_folder_rewritten_under_good_tarball_is_replaced) {
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    write_file(pkgs() / "alpha-1.0-0" / "bin" / "tool", "#!/bin/sh\necho evil\n");
    write_file(pkgs() / "alpha-1.0-0" / "bin" / "extra", "planted\n");
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    EXPECT_EQ(read_file(pkgs() / "alpha-1.0-0" / "bin" / "tool"), "#!/bin/sh\necho tool\n");
    EXPECT_FALSE(stdfs::exists(pkgs() / "alpha-1.0-0" / "bin" / "extra"));
}

TEST_F(Gate, A14_folder_without_tarball_is_fetched_again) {
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    const std::string fn = alpha_.filename().string();
    stdfs::remove(pkgs() / fn);
    write_file(pkgs() / "alpha-1.0-0" / "bin" / "tool", "#!/bin/sh\necho evil\n");
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    EXPECT_EQ(read_file(pkgs() / fn), read_file(alpha_));
    EXPECT_EQ(read_file(pkgs() / "alpha-1.0-0" / "bin" / "tool"), "#!/bin/sh\necho tool\n");
}

TEST_F(Gate, A14_planted_sibling_claiming_the_package_is_removed) {
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    stdfs::copy(pkgs() / "alpha-1.0-0", pkgs() / "alpha-planted", stdfs::copy_options::recursive);
    write_file(pkgs() / "alpha-planted" / "bin" / "tool", "#!/bin/sh\necho evil\n");
    ASSERT_EQ(one(alpha_).verdict, Verdict::Valid);
    EXPECT_FALSE(stdfs::exists(pkgs() / "alpha-planted"));
    EXPECT_TRUE(stdfs::exists(pkgs() / "alpha-1.0-0" / "info" / "index.json"));
}

TEST_F(Gate, A14_planted_sibling_in_another_package_directory_is_removed) {
    // conda links a folder of ANY package directory whose info/ matches the
    // record: a planted sibling with matching info/ in a second one must go
    // before the verified folder is placed.
    const stdfs::path other = t_ / "other-pkgs";
    write_file(other / "urls.txt", "");
    write_file(other / "planted" / "info" / "index.json", alpha_index);
    write_file(other / "planted" / "bin" / "tool", "#!/bin/sh\necho evil\n");
    write_file(other / "beta-1.0-0" / "info" / "index.json", R"({"name":"beta","version":"1.0","build":"0"})");
    options_.pkgs_dirs = {pkgs(), other};
    const GateReport rep = gate({url(alpha_)});
    ASSERT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(other / "planted")));
    EXPECT_TRUE(stdfs::exists(other / "beta-1.0-0" / "info" / "index.json")) << "another package's folder stays";
    EXPECT_EQ(read_file(pkgs() / "alpha-1.0-0" / "bin" / "tool"), "#!/bin/sh\necho tool\n");
    ASSERT_EQ(rep.cleaned.size(), 1u);
    EXPECT_EQ(rep.cleaned.at(0), std::vector<std::string>{(other / "planted").string()});
    // Nothing of the gate's at the second directory's top level but its own folder.
    EXPECT_EQ(top_level(other), (std::set<std::string>{".condaguard", "beta-1.0-0", "urls.txt"}));
    EXPECT_TRUE(stdfs::is_empty(other / ".condaguard" / "staging"));
}

TEST_F(Gate, A14_claimant_in_a_symlinked_package_directory_is_removed) {
    // conda follows a package directory given as a symbolic link; so do the search and the clean-up.
    const stdfs::path other = t_ / "other-pkgs";
    write_file(other / "urls.txt", "");
    write_file(other / "planted" / "info" / "index.json", alpha_index);
    stdfs::create_symlink(other, t_ / "linked-pkgs");
    options_.pkgs_dirs = {pkgs(), t_ / "linked-pkgs"};
    const GateReport rep = gate({url(alpha_)});
    ASSERT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_FALSE(stdfs::exists(other / "planted"));
    EXPECT_EQ(rep.cleaned.at(0).size(), 1u);
}

TEST_F(Gate, A14_leftover_tmp_claimants_in_the_target_and_a_second_directory_are_removed) {
    // Leftover temporary folders (seen linked by conda: PKGS/.tmp-x/), in the
    // package directory written to and in another one.
    const stdfs::path other = t_ / "other-pkgs";
    write_file(other / "urls.txt", "");
    write_file(pkgs() / "urls.txt", "");
    for (const auto& d : {pkgs(), other}) {
        write_file(d / ".tmp-x" / "info" / "index.json", alpha_index);
        write_file(d / ".tmp-x" / "info" / "repodata_record.json", "{not json");
    }
    options_.pkgs_dirs = {pkgs(), other};
    const GateReport rep = gate({url(alpha_), url(beta_)});
    ASSERT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    ASSERT_EQ(to_string(rep.packages.at(1).verdict), "VALID") << rep.packages.at(1).reason;
    EXPECT_FALSE(stdfs::exists(pkgs() / ".tmp-x"));
    EXPECT_FALSE(stdfs::exists(other / ".tmp-x"));
    // The unreadable record makes each folder claim beta as well: whichever
    // package came first removed it, and each is listed once.
    std::vector<std::string> all;
    for (const auto& c : rep.cleaned) all.insert(all.end(), c.begin(), c.end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, (std::vector<std::string>{(other / ".tmp-x").string(), (pkgs() / ".tmp-x").string()}));
    EXPECT_TRUE(stdfs::exists(pkgs() / "alpha-1.0-0" / "info" / "index.json"));
    EXPECT_TRUE(stdfs::exists(pkgs() / "beta-1.0-0" / "info" / "index.json"));
}

TEST_F(Gate, A14_one_package_directory_named_twice_is_cleaned_once) {
    // The package directory written to, named again through a link: its
    // placed folder is not a claimant, and its lock is not waited for twice.
    stdfs::create_directories(pkgs());
    stdfs::create_symlink(pkgs(), t_ / "same-pkgs");
    options_.pkgs_dirs = {pkgs(), t_ / "same-pkgs", pkgs()};
    const GateReport rep = gate({url(alpha_)});
    ASSERT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_TRUE(rep.cleaned.at(0).empty());
}

TEST_F(Gate, A14_symlinked_claimant_is_not_followed) {
    // conda skips links in a package directory, so a link to a claiming
    // folder is no claimant: it is left as it is, and what it points to is
    // never touched. The real claimant beside it is removed.
    const stdfs::path other = t_ / "other-pkgs";
    const stdfs::path outside = t_ / "outside";
    write_file(outside / "info" / "index.json", alpha_index);
    write_file(outside / "bin" / "tool", "kept\n");
    write_file(other / "urls.txt", "");
    write_file(other / "planted" / "info" / "index.json", alpha_index);
    stdfs::create_symlink(outside, other / "linked");
    stdfs::create_directories(pkgs());
    stdfs::create_symlink(outside, pkgs() / "linked-here");
    options_.pkgs_dirs = {pkgs(), other};
    const auto before = snapshot(outside);
    const GateReport rep = gate({url(alpha_)});
    ASSERT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_FALSE(stdfs::exists(other / "planted"));
    EXPECT_TRUE(stdfs::is_symlink(other / "linked"));
    EXPECT_TRUE(stdfs::is_symlink(pkgs() / "linked-here"));
    EXPECT_EQ(snapshot(outside), before);
    EXPECT_EQ(rep.cleaned.at(0), std::vector<std::string>{(other / "planted").string()});
}

// A claimant in a directory that cannot be written refuses the package, and
// every directory stays exactly as it was: nothing placed, nothing moved.
// `own_folder`: the read-only directory already has a .condaguard the gate
// can lock (so the refusal comes from the move itself, after claimants in
// the other directories were moved, and they must be put back).
// Makes `dir` unwritable for this process: mode 0555, or, for root (which
// ignores modes), the immutable attribute (chattr +i; needs
// CAP_LINUX_IMMUTABLE and a file system that has it). Undone on destruction.
class Unwritable {
public:
    explicit Unwritable(stdfs::path dir) : dir_(std::move(dir)) {
        if (::geteuid() != 0) {
            stdfs::permissions(dir_, stdfs::perms(0555));
            done_ = true;
            return;
        }
        done_ = set_immutable(true);
    }
    ~Unwritable() {
        if (!done_) return;
        if (::geteuid() != 0) stdfs::permissions(dir_, stdfs::perms(0755));
        else set_immutable(false);
    }
    Unwritable(const Unwritable&) = delete;
    Unwritable& operator=(const Unwritable&) = delete;
    bool done() const { return done_; }

private:
    bool set_immutable(bool on) const {
        const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return false;
        int flags = 0;
        bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
        if (ok) {
            flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
            ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
        }
        ::close(fd);
        return ok;
    }

    stdfs::path dir_;
    bool done_ = false;
};

void Gate::expect_read_only_claimant_refused(bool own_folder, const std::string& fragment) {
    const stdfs::path other = t_ / "other-pkgs";
    const stdfs::path ro = t_ / "ro-pkgs";
    write_file(pkgs() / "urls.txt", "");
    write_file(pkgs() / ".tmp-x" / "info" / "index.json", alpha_index);
    write_file(other / "urls.txt", "");
    write_file(other / "planted" / "info" / "index.json", alpha_index);
    write_file(ro / "urls.txt", "");
    write_file(ro / "planted-ro" / "info" / "index.json", alpha_index);
    if (own_folder) {
        stdfs::create_directory(ro / ".condaguard");
        stdfs::permissions(ro / ".condaguard", stdfs::perms::owner_all);
    }
    const Unwritable unwritable(ro);
    if (!unwritable.done()) GTEST_SKIP() << "root ignores modes, and chattr +i is not available here";
    options_.pkgs_dirs = {pkgs(), other, ro};
    auto outside_guard = [](std::map<std::string, std::string> m) {
        std::erase_if(m, [](const auto& kv) { return kv.first.starts_with(".condaguard"); });
        return m;
    };
    const auto before = std::array{outside_guard(snapshot(pkgs())), outside_guard(snapshot(other)),
                                   outside_guard(snapshot(ro))};
    const GateReport rep = gate({url(alpha_)});
    const Result& r = rep.packages.at(0);
    EXPECT_EQ(to_string(r.verdict), "ERROR") << r.reason;
    EXPECT_NE(r.reason.find("'planted-ro' in package directory " + ro.string()), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find(fragment), std::string::npos) << r.reason;
    EXPECT_EQ(outside_guard(snapshot(pkgs())), before[0]);
    EXPECT_EQ(outside_guard(snapshot(other)), before[1]);
    EXPECT_EQ(outside_guard(snapshot(ro)), before[2]);
    EXPECT_TRUE(rep.cleaned.at(0).empty());
    EXPECT_FALSE(rep.folders.at(0));
    for (const auto& d : {pkgs(), other})
        EXPECT_TRUE(!stdfs::exists(d / ".condaguard" / "staging") || stdfs::is_empty(d / ".condaguard" / "staging"));
}

TEST_F(Gate, A14_claimant_in_a_read_only_directory_refuses_before_anything_moves) {
    expect_read_only_claimant_refused(false, "cannot be locked");
}

TEST_F(Gate, A14_claimant_that_cannot_be_moved_puts_back_those_already_moved) {
    expect_read_only_claimant_refused(true, "cannot be moved out of it");
}

TEST_F(Gate, A14_cached_copy_rewritten_after_hashing_is_not_extracted) {
    // A good copy in another (shared) package directory, owned by someone who
    // rewrites it in place once the gate has hashed it: the gate must work on
    // a private copy of the bytes it hashed, not on the shared file.
    const stdfs::path shared = t_ / "shared-pkgs";
    const std::string fn = alpha_.filename().string();
    write_file(shared / "urls.txt", "");
    stdfs::copy_file(alpha_, shared / fn);
    stdfs::copy_file(alpha_.string() + ".sig", shared / (fn + ".sig"));
    options_.pkgs_dirs = {pkgs(), shared};
    std::vector<PackageUrl> ps{parse_package_url(url(alpha_), t_.path()), parse_package_url(url(beta_), t_.path())};
    bool rewritten = false;
    const auto rep = run_gate(ps, options_, env_, [&](const GateProgress&) {
        if (rewritten) return;
        rewritten = true;
        std::fstream f(shared / fn, std::ios::in | std::ios::out | std::ios::binary);
        const auto mid = static_cast<std::streamoff>(stdfs::file_size(shared / fn) / 2);
        f.seekg(mid);
        const char c = static_cast<char>(f.get() ^ 1);
        f.seekp(mid);
        f.put(c);
    });
    ASSERT_TRUE(rewritten);
    ASSERT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_EQ(read_file(pkgs() / fn), read_file(alpha_));
}

TEST_F(Gate, A26_one_channel_under_two_tokens_in_one_run) {
    // Two URLs of one channel that differ only in their token redact to the
    // same text; each must still get its own index, verified on its own.
    stdfs::create_directories(t_ / "t");
    stdfs::create_symlink(t_.path(), t_ / "t" / "tk-one");
    stdfs::create_symlink(t_.path(), t_ / "t" / "tk-two");
    const std::string a = "file://" + (t_ / "t" / "tk-one" / "channel" / "noarch" / alpha_.filename()).string();
    const std::string b = "file://" + (t_ / "t" / "tk-two" / "channel" / "noarch" / beta_.filename()).string();
    ASSERT_EQ(redact_url(a.substr(0, a.rfind("/noarch/"))), redact_url(b.substr(0, b.rfind("/noarch/"))));
    const auto rep = gate({a, b});
    ASSERT_EQ(rep.packages.size(), 2u);
    for (const auto& r : rep.packages) EXPECT_EQ(to_string(r.verdict), "VALID") << r.path << ": " << r.reason;
}

TEST_F(Gate, A14_condaguard_folder_claiming_the_package_is_not_overlooked) {
    // conda takes any top-level folder with info/index.json for a package,
    // .condaguard too (made by someone else before the gate first ran).
    write_file(pkgs() / "urls.txt", "");
    write_file(pkgs() / ".condaguard" / "info" / "index.json", R"({"name":"alpha","version":"1.0","build":"0"})");
    expect_refused(alpha_, Verdict::Error, "also claims");
}

TEST_F(Gate, A15_file_url_symlinked_package_refused) {
    stdfs::rename(alpha_, t_ / "real.conda");
    stdfs::create_symlink(t_ / "real.conda", alpha_);
    expect_refused(alpha_, Verdict::Error, "");
}

TEST_F(Gate, A15_file_url_symlinked_index_refused) {
    const stdfs::path rd = ch() / "noarch" / "repodata.json";
    stdfs::rename(rd, t_ / "repodata.json");
    stdfs::create_symlink(t_ / "repodata.json", rd);
    expect_refused(alpha_, Verdict::Error, "");
}

// ---- dry run ---------------------------------------------------------------

TEST_F(Gate, DryRunJudgesRecordsAndOpensNoPackageDirectory) {
    options_.dry_run = true;
    options_.pkgs_dirs = {pkgs(), t_ / "other"};
    stdfs::remove(beta_.string() + ".sig");  // packages are not fetched: not missed either
    const auto rep = gate({url(alpha_), url(beta_), url(alpha_) + "#" + std::string(64, '0')});
    ASSERT_EQ(rep.packages.size(), 3u);
    for (int i : {0, 1}) {
        EXPECT_EQ(to_string(rep.packages[i].verdict), "VALID") << rep.packages[i].reason;
        EXPECT_EQ(rep.packages[i].reason, dry_run_reason);
    }
    EXPECT_EQ(to_string(rep.packages[2].verdict), "ERROR") << "one file name twice: " << rep.packages[2].reason;
    EXPECT_EQ(rep.folders, (std::vector<std::optional<std::string>>{std::nullopt, std::nullopt, std::nullopt}));
    EXPECT_TRUE(rep.placed.empty());
    EXPECT_FALSE(stdfs::exists(pkgs()));
    EXPECT_FALSE(stdfs::exists(t_ / "other"));
}

TEST_F(Gate, A15_dry_run_still_compares_the_given_hash_with_the_signed_record) {
    options_.dry_run = true;
    const Result r = one_url(url(alpha_) + "#" + std::string(64, '0'));
    EXPECT_EQ(to_string(r.verdict), "INVALID");
    EXPECT_NE(r.reason.find("#sha256"), std::string::npos) << r.reason;
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(Gate, A10_dry_run_still_refuses_an_expired_index) {
    options_.dry_run = true;
    now_ = t0 + std::chrono::hours(13);
    EXPECT_EQ(to_string(one(alpha_).verdict), "EXPIRED");
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(Gate, A8_dry_run_min_age_judged_on_the_signed_record) {
    options_.dry_run = true;
    options_.min_age = std::chrono::hours(24 * 365 * 100);
    const Result r = one(alpha_);
    EXPECT_EQ(to_string(r.verdict), "INVALID");
    EXPECT_NE(r.reason.find("min_age"), std::string::npos) << r.reason;
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(Gate, DryRunOfAnUnsignedIndexSaysNothingWasAuthenticated) {
    options_.dry_run = true;
    stdfs::remove(ch() / "noarch" / "repodata.json.sig");
    const Result r = one(alpha_);
    EXPECT_EQ(to_string(r.verdict), "VALID") << r.reason;
    EXPECT_EQ(r.reason, dry_run_unsigned_reason);
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(Gate, FoldersFollowTheRequestOrder) {
    const auto rep = gate({url(beta_), url(alpha_)});
    ASSERT_EQ(rep.folders.size(), 2u);
    EXPECT_EQ(rep.folders[0], (pkgs() / "beta-1.0-0").string());
    EXPECT_EQ(rep.folders[1], (pkgs() / "alpha-1.0-0").string());
}

// The package directory's snapshot without the gate's own .condaguard (its
// lock file and empty staging folder, made by the first run that locks it).
std::map<std::string, std::string> outside_guard(std::map<std::string, std::string> m) {
    std::erase_if(m, [](const auto& kv) { return kv.first.starts_with(".condaguard"); });
    return m;
}

TEST_F(Gate, A7_one_refused_package_leaves_the_package_cache_as_it_was_for_the_whole_run) {
    // alpha carries beta's (valid) signature: refused. beta is good, but a
    // refusal must leave the cache exactly as it was: beta is not placed,
    // and its claimant (which placing would have removed) stays.
    stdfs::copy_file(beta_.string() + ".sig", alpha_.string() + ".sig", stdfs::copy_options::overwrite_existing);
    write_file(pkgs() / "urls.txt", "");
    write_file(pkgs() / ".tmp-b" / "info" / "index.json", R"({"name":"beta","version":"1.0","build":"0"})");
    const auto before = snapshot(pkgs());
    const GateReport rep = gate({url(alpha_), url(beta_)});
    ASSERT_EQ(rep.packages.size(), 2u);
    EXPECT_EQ(to_string(rep.packages[0].verdict), "INVALID") << rep.packages[0].reason;
    EXPECT_EQ(to_string(rep.packages[1].verdict), "VALID") << rep.packages[1].reason;
    EXPECT_NE(rep.packages[1].reason.find("verified, not placed: 1 other package of this run was refused"),
              std::string::npos)
        << rep.packages[1].reason;
    EXPECT_EQ(rep.packages[1].reason.find("placed in"), std::string::npos) << rep.packages[1].reason;
    EXPECT_EQ(rep.folders, (std::vector<std::optional<std::string>>{std::nullopt, std::nullopt}));
    EXPECT_TRUE(rep.placed.empty());
    EXPECT_TRUE(rep.cleaned.at(0).empty());
    EXPECT_TRUE(rep.cleaned.at(1).empty());
    EXPECT_EQ(outside_guard(snapshot(pkgs())), outside_guard(before));
    EXPECT_TRUE(stdfs::is_empty(pkgs() / ".condaguard" / "staging"));
}

TEST_F(Gate, A14_a_claimant_that_appears_while_packages_are_placed_is_removed_too) {
    // Written by something that does not take the lock, after the scan
    // before placing: the scan after placing finds it.
    const stdfs::path late = pkgs() / ".tmp-late";
    options_.after_placing = [&] { write_file(late / "info" / "index.json", alpha_index); };
    const GateReport rep = gate({url(alpha_), url(beta_)});
    ASSERT_EQ(rep.packages.size(), 2u);
    EXPECT_EQ(to_string(rep.packages[0].verdict), "VALID") << rep.packages[0].reason;
    EXPECT_EQ(to_string(rep.packages[1].verdict), "VALID") << rep.packages[1].reason;
    EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(late)));
    EXPECT_EQ(rep.cleaned.at(0), std::vector<std::string>{late.string()});
    EXPECT_TRUE(rep.cleaned.at(1).empty());
}

TEST_F(Gate, A7_staging_failing_for_one_package_places_nothing_and_puts_claimants_back) {
    // gamma verifies and extracts, but ships info/repodata_record.json as a
    // directory, which staging it for placing (step 1) cannot replace: an
    // ERROR found after alpha was staged. Nothing is published, and alpha's
    // claimant, moved out before, is back (found by an adversarial review).
    const stdfs::path gamma = build_package(
        ch() / "noarch", PackageSpec{.name = "gamma", .extra_info_members = {{"info/repodata_record.json/x", "x"}}});
    sign_index();
    write_file(pkgs() / "urls.txt", "");
    write_file(pkgs() / ".tmp-a" / "info" / "index.json", alpha_index);
    const auto before = snapshot(pkgs());
    const GateReport rep = gate({url(alpha_), url(gamma)});
    ASSERT_EQ(rep.packages.size(), 2u);
    EXPECT_EQ(to_string(rep.packages[1].verdict), "ERROR") << rep.packages[1].reason;
    EXPECT_NE(rep.packages[1].reason.find("repodata_record.json"), std::string::npos) << rep.packages[1].reason;
    EXPECT_EQ(to_string(rep.packages[0].verdict), "VALID") << rep.packages[0].reason;
    EXPECT_NE(rep.packages[0].reason.find("verified, not placed: 1 other package of this run was refused"),
              std::string::npos)
        << rep.packages[0].reason;
    EXPECT_TRUE(rep.placed.empty());
    EXPECT_EQ(outside_guard(snapshot(pkgs())), outside_guard(before));
    EXPECT_TRUE(stdfs::is_empty(pkgs() / ".condaguard" / "staging"));
}

TEST_F(Gate, A14_claimant_refusing_one_package_puts_back_another_packages_claimants) {
    // alpha passes everything and its claimant in a second directory can be
    // moved; beta is claimed by a .condaguard folder, which the gate never
    // removes (ERROR). Nothing of the run is placed, and alpha's claimant,
    // moved before beta's refusal, is back where it was.
    const stdfs::path other = t_ / "other-pkgs";
    write_file(pkgs() / "urls.txt", "");
    write_file(other / "urls.txt", "");
    write_file(other / "planted" / "info" / "index.json", alpha_index);
    write_file(other / ".condaguard" / "info" / "index.json", R"({"name":"beta","version":"1.0","build":"0"})");
    options_.pkgs_dirs = {pkgs(), other};
    const auto before = std::array{snapshot(pkgs()), snapshot(other)};
    const GateReport rep = gate({url(alpha_), url(beta_)});
    EXPECT_EQ(to_string(rep.packages.at(1).verdict), "ERROR") << rep.packages.at(1).reason;
    EXPECT_NE(rep.packages.at(1).reason.find("also claims"), std::string::npos) << rep.packages.at(1).reason;
    EXPECT_EQ(to_string(rep.packages.at(0).verdict), "VALID") << rep.packages.at(0).reason;
    EXPECT_NE(rep.packages.at(0).reason.find("verified, not placed"), std::string::npos) << rep.packages.at(0).reason;
    EXPECT_TRUE(rep.cleaned.at(0).empty());
    EXPECT_TRUE(rep.placed.empty());
    EXPECT_EQ(outside_guard(snapshot(pkgs())), outside_guard(before[0]));
    // other's .condaguard is the claimant itself: only its lock and staging may be new.
    auto without_gate_files = [](std::map<std::string, std::string> m) {
        std::erase_if(m, [](const auto& kv) {
            return kv.first == ".condaguard/lock" || kv.first.starts_with(".condaguard/staging");
        });
        return m;
    };
    EXPECT_EQ(without_gate_files(snapshot(other)), without_gate_files(before[1]));
    EXPECT_TRUE(stdfs::is_empty(other / ".condaguard" / "staging"));
}

TEST_F(Gate, A5_cached_copy_with_another_keys_sig_is_judged_by_the_channels_own_sig) {
    // The cache holds alpha's bytes from another channel, with that
    // channel's FN.sig (by "other"). This channel allows only "chan" and
    // serves chan's valid .sig: that one decides, and replaces the cached one.
    ASSERT_EQ(to_string(one(alpha_).verdict), "VALID");
    const std::string fn = alpha_.filename().string();
    const PrivateKey& other = keys_.add("other");
    sign_file(pkgs() / fn, KeyName("other"), other);
    ASSERT_NE(read_file(pkgs() / (fn + ".sig")), read_file(alpha_.string() + ".sig"));
    trust_.allowed_keys = {"chan"};
    const Result r = one(alpha_);
    EXPECT_EQ(to_string(r.verdict), "VALID") << r.reason;
    EXPECT_EQ(read_file(pkgs() / (fn + ".sig")), read_file(alpha_.string() + ".sig"));
    // And the other way round: a cached .sig by an allowed key does not stand in for the channel's.
    trust_.allowed_keys = {"other"};
    sign_file(pkgs() / fn, KeyName("other"), other);
    expect_refused(alpha_, Verdict::UntrustedKey, "does not allow");
}

TEST_F(Gate, A2_cached_copy_whose_channel_serves_no_sig_is_MISSING_SIG) {
    ASSERT_EQ(to_string(one(alpha_).verdict), "VALID");
    stdfs::remove(alpha_.string() + ".sig");
    expect_refused(alpha_, Verdict::MissingSig, ".sig");
}

TEST_F(Gate, A16_placed_folder_is_0755_as_condas_and_keeps_the_archives_modes) {
    // conda's own folders are 0755 (every user of a shared cache reads
    // them); members keep their mode less group/other write, never setuid.
    ASSERT_EQ(to_string(one(alpha_).verdict), "VALID");
    const stdfs::path folder = pkgs() / "alpha-1.0-0";
    auto mode = [](const stdfs::path& p) {
        struct stat st {};
        EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
        return st.st_mode & 07777;
    };
    EXPECT_EQ(mode(folder), 0755u);
    EXPECT_EQ(mode(folder / "bin"), 0755u);
    EXPECT_EQ(mode(folder / "info"), 0755u);
    EXPECT_EQ(mode(folder / "bin" / "tool"), 0755u);
    EXPECT_EQ(mode(folder / "info" / "index.json"), 0644u);
    // Placed again over a folder that was there: still 0755.
    write_file(folder / "bin" / "tool", "#!/bin/sh\necho evil\n");
    ASSERT_EQ(to_string(one(alpha_).verdict), "VALID");
    EXPECT_EQ(mode(folder), 0755u);
}

// ---- a channel the policy allows unsigned (signatures: none) --------------

class GateUnsigned : public Gate {
protected:
    void SetUp() override {
        Gate::SetUp();
        strip_signatures();
    }
};

TEST_F(GateUnsigned, A1_signatures_none_package_is_UNVERIFIED_and_placed_like_a_signed_one) {
    allow_unsigned();
    const auto rep = gate({url(alpha_), url(beta_)});
    ASSERT_EQ(rep.packages.size(), 2u);
    EXPECT_EQ(to_string(rep.indexes.at(0).verdict), "UNVERIFIED") << rep.indexes.at(0).reason;
    EXPECT_NE(rep.indexes.at(0).reason.find(rule_source), std::string::npos) << rep.indexes.at(0).reason;
    for (std::size_t i = 0; i < 2; ++i) {
        const Result& r = rep.packages[i];
        EXPECT_EQ(to_string(r.verdict), "UNVERIFIED") << r.reason;
        EXPECT_NE(r.reason.find("not authenticated"), std::string::npos) << r.reason;
        EXPECT_NE(r.reason.find(rule_source), std::string::npos) << r.reason;
        EXPECT_EQ(rep.unverified_by.at(i), std::optional<std::string>("conda-forge"));
        EXPECT_TRUE(rep.folders.at(i).has_value());
    }
    EXPECT_EQ(rep.placed.size(), 2u);
    const std::string fn = alpha_.filename().string();
    EXPECT_EQ(read_file(pkgs() / fn), read_file(alpha_));
    EXPECT_FALSE(stdfs::exists(pkgs() / (fn + ".sig")));
    EXPECT_EQ(read_file(pkgs() / "alpha-1.0-0" / "bin" / "tool"), "#!/bin/sh\necho tool\n");
    const json rec = json::parse(read_file(pkgs() / "alpha-1.0-0" / "info" / "repodata_record.json"));
    EXPECT_EQ(rec["sha256"], to_hex(sha256_bytes(read_file(alpha_))));
    EXPECT_NE(read_file(pkgs() / "urls.txt").find(url(alpha_) + "\n"), std::string::npos);
}

TEST_F(GateUnsigned, A1_no_rule_and_no_signatures_is_MISSING_SIG_as_before) {
    expect_refused(alpha_, Verdict::MissingSig, ".sig");
    allow_unsigned();
    EXPECT_EQ(to_string(one(alpha_).verdict), "UNVERIFIED");
}

TEST_F(GateUnsigned, A1_signatures_none_fetches_no_signature_at_all) {
    // Signatures that are there but broken are not even looked at: nothing is authenticated.
    write_file(ch() / "noarch" / "repodata.json.sig", "chan not-base64!!\n");
    write_file(alpha_.string() + ".sig", "../../tmp/x garbage extra\n");
    allow_unsigned();
    const auto rep = gate({url(alpha_)});
    EXPECT_EQ(to_string(rep.indexes.at(0).verdict), "UNVERIFIED") << rep.indexes.at(0).reason;
    EXPECT_EQ(to_string(rep.packages.at(0).verdict), "UNVERIFIED") << rep.packages.at(0).reason;
    EXPECT_FALSE(stdfs::exists(pkgs() / (alpha_.filename().string() + ".sig")));
}

TEST_F(GateUnsigned, A8_signatures_none_bytes_not_matching_the_unsigned_record_are_INVALID) {
    allow_unsigned();
    std::string bytes = read_file(alpha_);
    bytes[bytes.size() / 2] ^= 1;
    write_file(alpha_, bytes);
    expect_refused(alpha_, Verdict::Invalid, "sha256 of the download does not match the unsigned index record");
}

TEST_F(GateUnsigned, A7_signatures_none_still_checks_the_archives_identity) {
    // beta's bytes under alpha's name, with a record that matches them.
    allow_unsigned();
    json rd = json::parse(read_file(ch() / "noarch" / "repodata.json"));
    const stdfs::path fake = ch() / "noarch" / "alpha-1.0-0.tar.bz2";
    json rec = rd["packages"][beta_.filename().string()];
    rec["name"] = "alpha";
    rd["packages"]["alpha-1.0-0.tar.bz2"] = rec;
    write_file(ch() / "noarch" / "repodata.json", rd.dump());
    stdfs::copy_file(beta_, fake);
    expect_refused(fake, Verdict::Invalid, "index.json");
}

TEST_F(GateUnsigned, A1_seen_signed_then_signatures_none_is_a_refused_downgrade) {
    // Signed first (the fixture's channel, signatures back), then stripped while the policy says none.
    sign_index();
    ASSERT_EQ(to_string(one(alpha_).verdict), "VALID");
    strip_signatures();
    allow_unsigned();
    expect_refused(beta_, Verdict::MissingSig, "conda-guard state reset example");
    const auto rep = gate({url(beta_)});
    EXPECT_EQ(to_string(rep.indexes.at(0).verdict), "MISSING_SIG");
    EXPECT_NE(rep.indexes.at(0).reason.find("downgrade"), std::string::npos) << rep.indexes.at(0).reason;
    EXPECT_FALSE(stdfs::exists(pkgs() / "beta-1.0-0"));
}

TEST_F(GateUnsigned, A14_signatures_none_cached_copy_rehashed_and_a_stale_sig_removed) {
    allow_unsigned();
    ASSERT_EQ(to_string(one(alpha_).verdict), "UNVERIFIED");
    const std::string fn = alpha_.filename().string();
    write_file(pkgs() / (fn + ".sig"), "stale\n");
    std::string bytes = read_file(pkgs() / fn);
    bytes[bytes.size() / 2] ^= 1;
    write_file(pkgs() / fn, bytes);  // the cached copy no longer matches: fetched again
    stdfs::copy(pkgs() / "alpha-1.0-0", pkgs() / "alpha-planted", stdfs::copy_options::recursive);
    const Result r = one(alpha_);
    EXPECT_EQ(to_string(r.verdict), "UNVERIFIED") << r.reason;
    EXPECT_EQ(read_file(pkgs() / fn), read_file(alpha_));
    EXPECT_FALSE(stdfs::exists(pkgs() / (fn + ".sig")));
    EXPECT_FALSE(stdfs::exists(pkgs() / "alpha-planted"));
    // And a good cached copy is used as it is.
    EXPECT_EQ(to_string(one(alpha_).verdict), "UNVERIFIED");
}

TEST_F(GateUnsigned, A1_dry_run_of_signatures_none_is_UNVERIFIED_without_downloading) {
    allow_unsigned();
    options_.dry_run = true;
    const auto rep = gate({url(alpha_)});
    EXPECT_EQ(to_string(rep.packages.at(0).verdict), "UNVERIFIED") << rep.packages.at(0).reason;
    EXPECT_NE(rep.packages.at(0).reason.find("dry run"), std::string::npos) << rep.packages.at(0).reason;
    EXPECT_EQ(rep.unverified_by.at(0), std::optional<std::string>("conda-forge"));
    EXPECT_EQ(rep.folders.at(0), std::nullopt);
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(GateUnsigned, A1_signatures_none_package_not_placed_when_another_is_refused_stays_UNVERIFIED) {
    allow_unsigned();
    write_file(alpha_, read_file(alpha_) + "x");
    write_file(pkgs() / "urls.txt", "");
    const auto before = snapshot(pkgs());
    const auto rep = gate({url(alpha_), url(beta_)});
    EXPECT_EQ(to_string(rep.packages.at(0).verdict), "INVALID") << rep.packages.at(0).reason;
    EXPECT_EQ(to_string(rep.packages.at(1).verdict), "UNVERIFIED") << rep.packages.at(1).reason;
    EXPECT_NE(rep.packages.at(1).reason.find("not placed"), std::string::npos) << rep.packages.at(1).reason;
    EXPECT_EQ(rep.folders.at(1), std::nullopt);
    EXPECT_EQ(outside_guard(snapshot(pkgs())), outside_guard(before));
}

// ---- over HTTP: Debian's nginx, and the fault-injecting server -------------

class GateHttp : public Gate {
protected:
    void SetUp() override {
        Gate::SetUp();
        options_.transport.max_retries = 1;
        options_.transport.backoff = std::chrono::milliseconds(10);
        options_.transport.low_speed_time = std::chrono::seconds(1);
        options_.transport.connect_timeout = std::chrono::milliseconds(2000);
    }
    // Serves every file of the channel from the fault server, `edit` changing one route.
    void serve_channel(FaultServer& srv) {
        for (const auto& e : stdfs::recursive_directory_iterator(ch()))
            if (e.is_regular_file())
                srv.route("/" + stdfs::relative(e.path(), t_.path()).string(), Route{.body = read_file(e.path())});
    }
    std::string rel(const stdfs::path& p) const { return "/" + stdfs::relative(p, t_.path()).string(); }
    Result one_url(const std::string& u) {
        auto r = gate({u});
        return r.packages.at(0);
    }
    void expect_refused_url(const std::string& u, Verdict v, const std::string& fragment) {
        const auto before = snapshot(pkgs());
        const Result r = one_url(u);
        EXPECT_EQ(to_string(r.verdict), to_string(v)) << r.reason;
        EXPECT_NE(r.reason.find(fragment), std::string::npos) << r.reason;
        for (const auto& [path, what] : snapshot(pkgs())) {
            if (path == "urls.txt" || path.starts_with(".condaguard")) continue;
            EXPECT_TRUE(before.count(path) && before.at(path) == what) << "changed: " << path;
        }
    }
};

TEST_F(GateHttp, NginxHttpAndConditionalIndexRequests) {
    CONDAGUARD_NGINX_OR_SKIP();
    Deadline d(60);
    Nginx nginx(t_.path());
    const auto rep = gate({nginx.http_url(rel(alpha_)), nginx.http_url(rel(beta_))});
    for (const auto& r : rep.packages) EXPECT_EQ(to_string(r.verdict), "VALID") << r.path << ": " << r.reason;
    EXPECT_TRUE(stdfs::is_directory(pkgs() / "beta-1.0-0" / "info"));
    // Again: the index is not downloaded again (304), and is verified again.
    stdfs::remove_all(pkgs());
    ASSERT_EQ(one_url(nginx.http_url(rel(alpha_))).verdict, Verdict::Valid);
    EXPECT_NE(nginx.access_log().find("GET /channel/noarch/repodata.json HTTP/1.1 304"), std::string::npos)
        << nginx.access_log();
}

TEST_F(GateHttp, NginxHttpsWithTheTestCa) {
    CONDAGUARD_NGINX_OR_SKIP();
    Deadline d(60);
    Nginx nginx(t_.path());
    options_.transport.ca_bundle = test_ca_file();
    EXPECT_EQ(one_url(nginx.https_url(rel(alpha_))).verdict, Verdict::Valid);
}

TEST_F(GateHttp, A26_https_without_the_ca_is_refused) {
    CONDAGUARD_NGINX_OR_SKIP();
    Deadline d(60);
    Nginx nginx(t_.path());
    expect_refused_url(nginx.https_url(rel(alpha_)), Verdict::Error, "");
}

TEST_F(GateHttp, ZstdIndexUsedWhereOfferedSignatureOverDecodedBytes) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    const stdfs::path rd = ch() / "noarch" / "repodata.json";
    srv.route(rel(rd) + ".zst", Route{.body = compress(read_file(rd), Compression::Zstd)});
    srv.route(rel(rd), Route{.status = 500});  // never asked for while the .zst is there
    EXPECT_EQ(to_string(one_url(srv.url(rel(alpha_))).verdict), "VALID");
    EXPECT_EQ(srv.hits(rel(rd)), 0u);
    // Decompression stops at the policy's cap.
    options_.max_index_bytes = 100;
    stdfs::remove_all(t_ / "state" / "index-cache");
    expect_refused_url(srv.url(rel(beta_)), Verdict::Error, "over the limit");
}

TEST_F(GateHttp, A1_downgrade_seen_whatever_the_case_of_scheme_and_host) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    const std::string shouted = "HTTP://127.0.0.1:" + std::to_string(srv.port()) + rel(alpha_);
    ASSERT_EQ(to_string(one_url(shouted).verdict), "VALID");
    srv.route(rel(ch() / "noarch" / "repodata.json.sig"), Route{.status = 404});
    expect_refused_url(srv.url(rel(beta_)), Verdict::MissingSig, "signed here before");
}

TEST_F(GateHttp, A5_policy_is_looked_up_by_the_normalised_channel_url) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    std::vector<std::string> asked;
    options_.trust_for = [&](const std::string& channel) {
        asked.push_back(channel);
        return trust_;
    };
    const std::string port = std::to_string(srv.port());
    ASSERT_EQ(to_string(one_url("HTTP://127.0.0.1:" + port + rel(alpha_)).verdict), "VALID");
    ASSERT_FALSE(asked.empty());
    for (const auto& a : asked) EXPECT_EQ(a, "http://127.0.0.1:" + port + "/channel");
}

TEST_F(GateHttp, A2_sig_404) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    srv.route(rel(alpha_) + ".sig", Route{.status = 404});
    expect_refused_url(srv.url(rel(alpha_)), Verdict::MissingSig, ".sig");
}

TEST_F(GateHttp, A12_endless_package_body_stops_at_the_record_size) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    srv.route(rel(alpha_), Route{.body = std::string(1 << 16, 'x'), .fault = Fault::Endless});
    expect_refused_url(srv.url(rel(alpha_)), Verdict::Invalid, "larger");
}

TEST_F(GateHttp, A13_slow_drip_is_abandoned) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    srv.route(rel(alpha_), Route{.body = read_file(alpha_), .fault = Fault::SlowDrip,
                                 .drip_interval = std::chrono::milliseconds(2500)});
    expect_refused_url(srv.url(rel(alpha_)), Verdict::Error, "download failed");
}

TEST_F(GateHttp, A8_truncated_then_good_download_is_retried) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    srv.route(rel(alpha_), Route{.body = read_file(alpha_), .fault = Fault::Truncate, .fault_times = 1});
    EXPECT_EQ(one_url(srv.url(rel(alpha_))).verdict, Verdict::Valid);
}

TEST_F(GateHttp, A22_sig_redirected_to_another_origin_is_refused) {
    Deadline d(30);
    FaultServer srv, other;
    serve_channel(srv);
    serve_channel(other);
    srv.route(rel(alpha_) + ".sig", Route{.status = 302, .location = other.url(rel(alpha_) + ".sig")});
    expect_refused_url(srv.url(rel(alpha_)), Verdict::Error, "origin");
}

TEST_F(GateHttp, A26_credentials_never_sent_over_http) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    const std::string u = "http://user:secret@127.0.0.1:" + std::to_string(srv.port()) + rel(alpha_);
    const auto rep = gate({u});
    EXPECT_NE(rep.packages.at(0).verdict, Verdict::Valid);
    for (const auto& r : rep.indexes) EXPECT_EQ(r.path.find("secret"), std::string::npos) << r.path;
    EXPECT_EQ(rep.packages.at(0).reason.find("secret"), std::string::npos);
    EXPECT_EQ(rep.packages.at(0).path.find("secret"), std::string::npos);
    for (const auto& req : srv.requests()) EXPECT_FALSE(req.has_header("authorization")) << req.target;
}

TEST_F(GateHttp, A1_signatures_none_asks_the_server_for_no_sig) {
    Deadline d(30);
    strip_signatures();
    allow_unsigned();
    FaultServer srv;
    serve_channel(srv);
    const Result r = one_url(srv.url(rel(alpha_)));
    EXPECT_EQ(to_string(r.verdict), "UNVERIFIED") << r.reason;
    for (const auto& req : srv.requests()) EXPECT_FALSE(req.target.ends_with(".sig")) << req.target;
}

TEST_F(GateHttp, A5_cached_copy_fetches_the_channels_sig_and_not_the_archive) {
    Deadline d(30);
    FaultServer srv;
    serve_channel(srv);
    ASSERT_EQ(to_string(one_url(srv.url(rel(alpha_))).verdict), "VALID");
    const std::string fn = alpha_.filename().string();
    sign_file(pkgs() / fn, KeyName("other"), keys_.add("other"));
    trust_.allowed_keys = {"chan"};
    const Result r = one_url(srv.url(rel(alpha_)));
    EXPECT_EQ(to_string(r.verdict), "VALID") << r.reason;
    EXPECT_EQ(srv.hits(rel(alpha_)), 1u) << "the cached bytes are re-hashed, not downloaded again";
    EXPECT_EQ(srv.hits(rel(alpha_) + ".sig"), 2u) << "the channel's .sig is fetched for the cached copy";
    EXPECT_EQ(read_file(pkgs() / (fn + ".sig")), read_file(alpha_.string() + ".sig"));
    // The channel stops serving it: refused, although the cache has one.
    srv.route(rel(alpha_) + ".sig", Route{.status = 404});
    expect_refused_url(srv.url(rel(alpha_)), Verdict::MissingSig, ".sig");
}

TEST_F(GateHttp, A1_signatures_none_cached_copy_asks_for_no_sig_and_no_download) {
    Deadline d(30);
    strip_signatures();
    allow_unsigned();
    FaultServer srv;
    serve_channel(srv);
    ASSERT_EQ(to_string(one_url(srv.url(rel(alpha_))).verdict), "UNVERIFIED");
    const Result r = one_url(srv.url(rel(alpha_)));
    EXPECT_EQ(to_string(r.verdict), "UNVERIFIED") << r.reason;
    EXPECT_EQ(srv.hits(rel(alpha_)), 1u);
    for (const auto& req : srv.requests()) EXPECT_FALSE(req.target.ends_with(".sig")) << req.target;
}

}  // namespace
