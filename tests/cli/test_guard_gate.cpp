// conda-guard gate as the conda plugin calls it: a JSON request on standard
// input, one JSON answer on standard output, against a channel built and
// signed here and reached through file:// URLs.
#include <condaguard/channel/publish.hpp>
#include <condaguard/trust/digest.hpp>

#include "../support/packages.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace condaguard;
using namespace condaguard::test;
using json = nlohmann::json;

namespace {

constexpr const char* dry_run_words =
    "dry run: record verified in the signed index; the package itself was not fetched";

class GuardGate : public ::testing::Test {
protected:
    void SetUp() override {
        alpha_ = build_package(ch() / "noarch", PackageSpec{.name = "alpha"});
        beta_ = build_package(ch() / "noarch", PackageSpec{.name = "beta", .format = PackageFormat::TarBz2});
        sign(ch());
        stdfs::create_directories(t_ / "home");
    }
    void sign(const stdfs::path& channel) {
        const PrivateKey& key = keys_.add("chan");
        index_channel(channel, IndexOptions{.jobs = 1,
                                            .signing = IndexSigning{.key_name = KeyName("chan"),
                                                                    .key = &key,
                                                                    .channel_id = "example",
                                                                    .sign_packages = true,
                                                                    .signed_at = system_now()}});
    }
    stdfs::path ch() const { return t_ / "channel"; }
    stdfs::path pkgs() const { return t_ / "pkgs"; }
    static std::string url(const stdfs::path& p) { return "file://" + p.string(); }

    // The record conda would hand over for the package at `pkg` (name-1.0-0):
    // its channel's repodata.json entry, with url, fn and channel.
    static json record(const stdfs::path& pkg, const std::string& name) {
        const json index = json::parse(read_file(pkg.parent_path() / "repodata.json"));
        const std::string fn = pkg.filename().string();
        json rec = index[fn.ends_with(".conda") ? "packages.conda" : "packages"].at(fn);
        EXPECT_EQ(rec["name"], name);
        EXPECT_EQ(rec["sha256"], to_hex(sha256_bytes(read_file(pkg))));
        EXPECT_TRUE(rec["md5"].is_string());
        rec["url"] = url(pkg);
        rec["fn"] = fn;
        rec["channel"] = url(pkg.parent_path());
        return rec;
    }
    json request(json records, bool dry_run = false) const {
        return {{"version", 1},
                {"command", "install"},
                {"dry_run", dry_run},
                {"pkgs_dirs", json::array({pkgs().string()})},
                {"records", std::move(records)}};
    }
    std::vector<std::string> env() const {
        return {"HOME=" + (t_ / "home").string(),
                "CONDA_KEYS_DIR=" + keys_.keys().string(),
                "CONDA_GUARD_STATE_DIR=" + (t_ / "state").string(),
                "CONDARC=",
                "CONDA_PKGS_DIRS=",
                "CONDA_ROOT=",
                "CONDA_EXE=",
                "CONDA_PREFIX=",
                "XDG_CONFIG_HOME=",
                "CONDA_REMOTE_MAX_RETRIES=0"};
    }
    RunResult gate(const std::string& input, std::vector<std::string> args = {}) const {
        args.insert(args.begin(), {conda_guard_exe(), "gate"});
        return run(args, env(), input);
    }
    // Runs the gate; stdout must be exactly one JSON document with the envelope.
    json answer(const std::string& input, int expected_status) const {
        const RunResult r = gate(input);
        EXPECT_EQ(r.status, expected_status) << r.out << r.err;
        json doc;
        try {
            doc = json::parse(r.out);
        } catch (const json::exception& e) {
            ADD_FAILURE() << "stdout is not one JSON document: " << e.what() << "\n" << r.out;
            return json::object();
        }
        EXPECT_EQ(doc["version"], 1);
        EXPECT_EQ(doc["command"], "gate");
        return doc;
    }
    // A request the gate must refuse as a whole: exit 2, an error document, nothing created.
    void expect_stopped(const std::string& input, const std::string& fragment) const {
        const RunResult r = gate(input);
        EXPECT_EQ(r.status, 2) << r.out << r.err;
        json doc;
        ASSERT_NO_THROW(doc = json::parse(r.out)) << r.out;
        EXPECT_EQ(doc["version"], 1);
        EXPECT_EQ(doc["command"], "gate");
        EXPECT_EQ(doc["status"], "error");
        ASSERT_TRUE(doc["message"].is_string()) << r.out;
        EXPECT_NE(doc["message"].get<std::string>().find(fragment), std::string::npos) << doc["message"];
        EXPECT_FALSE(doc.contains("packages")) << "no verdicts from a refused request";
        EXPECT_NE(r.err.find("conda-guard: error: "), std::string::npos) << r.err;
        EXPECT_FALSE(stdfs::exists(pkgs()));
    }

    TempDir t_;
    Keys keys_;
    stdfs::path alpha_, beta_;
};

TEST_F(GuardGate, PlacesGoodRecordsAndAnswersInJson) {
    json doc = answer(request({record(alpha_, "alpha"), record(beta_, "beta")}).dump(), 0);
    EXPECT_EQ(doc["status"], "ok");
    EXPECT_EQ(doc["dry_run"], false);
    ASSERT_EQ(doc["indexes"].size(), 1u);
    EXPECT_EQ(doc["indexes"][0]["verdict"], "VALID");
    EXPECT_EQ(doc["indexes"][0]["key"], "chan");
    EXPECT_EQ(doc["indexes"][0]["fingerprint"].get<std::string>().size(), 64u);
    ASSERT_EQ(doc["packages"].size(), 2u);
    const json& a = doc["packages"][0];
    EXPECT_EQ(a["fn"], alpha_.filename().string());
    EXPECT_EQ(a["url"], url(alpha_));
    EXPECT_EQ(a["verdict"], "VALID") << a["reason"];
    EXPECT_EQ(a["key"], "chan");
    EXPECT_EQ(a["placed"], (pkgs() / "alpha-1.0-0").string());
    EXPECT_EQ(doc["packages"][1]["fn"], beta_.filename().string());
    EXPECT_EQ(doc["packages"][1]["placed"], (pkgs() / "beta-1.0-0").string());
    EXPECT_TRUE(stdfs::is_regular_file(pkgs() / "alpha-1.0-0" / "info" / "repodata_record.json"));
    EXPECT_EQ(read_file(pkgs() / beta_.filename()), read_file(beta_));
}

TEST_F(GuardGate, LandsInTheFirstPackageDirectoryThatCanBeWritten) {
    write_file(t_ / "afile", "not a directory");
    json req = request({record(alpha_, "alpha")});
    req["pkgs_dirs"] = {(t_ / "afile" / "pkgs").string(), pkgs().string()};
    json doc = answer(req.dump(), 0);
    EXPECT_EQ(doc["packages"][0]["placed"], (pkgs() / "alpha-1.0-0").string()) << doc.dump();
}

TEST_F(GuardGate, A14_claimants_in_every_package_directory_are_removed_and_listed) {
    // A planted sibling in a second package directory (conda searches them
    // all) and a leftover in the first: both go, and the answer lists them
    // under the package they claimed.
    const stdfs::path other = t_ / "other-pkgs";
    const char* claims_alpha = R"({"name":"alpha","version":"1.0","build":"0"})";
    write_file(other / "urls.txt", "");
    write_file(other / "planted" / "info" / "index.json", claims_alpha);
    write_file(pkgs() / "urls.txt", "");
    write_file(pkgs() / ".tmp-x" / "info" / "index.json", claims_alpha);
    json req = request({record(alpha_, "alpha"), record(beta_, "beta")});
    req["pkgs_dirs"] = {pkgs().string(), other.string()};
    json doc = answer(req.dump(), 0);
    ASSERT_EQ(doc["packages"].size(), 2u) << doc.dump();
    const json& a = doc["packages"][0];
    EXPECT_EQ(a["verdict"], "VALID") << a["reason"];
    EXPECT_EQ(a["placed"], (pkgs() / "alpha-1.0-0").string());
    EXPECT_EQ(a["cleaned"], json::array({(pkgs() / ".tmp-x").string(), (other / "planted").string()})) << a;
    EXPECT_EQ(doc["packages"][1]["cleaned"], json::array()) << doc["packages"][1];
    EXPECT_FALSE(stdfs::exists(other / "planted"));
    EXPECT_FALSE(stdfs::exists(pkgs() / ".tmp-x"));
}

TEST_F(GuardGate, NoRecordsIsANoOp) {
    json doc = answer(request(json::array()).dump(), 0);
    EXPECT_EQ(doc["status"], "ok");
    EXPECT_EQ(doc["packages"], json::array());
    EXPECT_EQ(doc["indexes"], json::array());
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(GuardGate, A8_record_sha256_disagreeing_with_the_signed_index_is_refused) {
    json bad = record(alpha_, "alpha");
    bad["sha256"] = std::string(64, 'a');
    json doc = answer(request({bad, record(beta_, "beta")}).dump(), 1);
    EXPECT_EQ(doc["status"], "fail");
    EXPECT_EQ(doc["packages"][0]["verdict"], "INVALID");
    EXPECT_NE(doc["packages"][0]["reason"].get<std::string>().find("sha256"), std::string::npos);
    EXPECT_TRUE(doc["packages"][0]["placed"].is_null());
    EXPECT_EQ(doc["packages"][1]["verdict"], "VALID");
    EXPECT_FALSE(stdfs::exists(pkgs() / "alpha-1.0-0"));
    EXPECT_FALSE(stdfs::exists(pkgs() / alpha_.filename()));
}

TEST_F(GuardGate, A8_record_md5_disagreeing_with_the_signed_index_is_refused) {
    json bad = record(alpha_, "alpha");
    bad["md5"] = std::string(32, '0');
    json doc = answer(request({bad}).dump(), 1);
    EXPECT_EQ(doc["packages"][0]["verdict"], "INVALID");
    EXPECT_NE(doc["packages"][0]["reason"].get<std::string>().find("md5"), std::string::npos);
    EXPECT_FALSE(stdfs::exists(pkgs() / "alpha-1.0-0"));
}

TEST_F(GuardGate, A7_record_naming_another_package_than_its_url_is_refused) {
    for (const char* field : {"name", "version", "build", "subdir", "fn"}) {
        json bad = record(alpha_, "alpha");
        bad[field] = "zlib";
        json doc = answer(request({bad, record(beta_, "beta")}).dump(), 1);
        EXPECT_EQ(doc["packages"][0]["verdict"], "INVALID") << field;
        EXPECT_NE(doc["packages"][0]["reason"].get<std::string>().find(std::string("record's ") + field),
                  std::string::npos)
            << doc["packages"][0]["reason"];
        EXPECT_EQ(doc["packages"][0]["url"], url(alpha_));
        EXPECT_EQ(doc["packages"][1]["verdict"], "VALID") << "the others are still judged";
        EXPECT_FALSE(stdfs::exists(pkgs() / "alpha-1.0-0")) << field;
    }
}

TEST_F(GuardGate, A2_missing_package_signature) {
    stdfs::remove(beta_.string() + ".sig");
    json doc = answer(request({record(alpha_, "alpha"), record(beta_, "beta")}).dump(), 1);
    EXPECT_EQ(doc["packages"][0]["verdict"], "VALID");
    EXPECT_EQ(doc["packages"][1]["verdict"], "MISSING_SIG");
    EXPECT_TRUE(doc["packages"][1]["placed"].is_null());
    EXPECT_FALSE(stdfs::exists(pkgs() / "beta-1.0-0"));
    EXPECT_FALSE(stdfs::exists(pkgs() / beta_.filename()));
}

TEST_F(GuardGate, A26_credentials_in_record_urls_are_never_printed) {
    // A channel whose path carries a token (/t/TOKEN/), reached as file://.
    const stdfs::path tok = t_ / "srv" / "t" / "tk-s3cret" / "chan";
    const stdfs::path gamma = build_package(tok / "noarch", PackageSpec{.name = "gamma"});
    sign(tok);
    RunResult r = gate(request({record(gamma, "gamma")}).dump());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("/t/<TOKEN>/chan/noarch/gamma-1.0-0.conda"), std::string::npos) << r.out;
    for (const std::string& out : {r.out, r.err}) EXPECT_EQ(out.find("tk-s3cret"), std::string::npos) << out;

    // A user and password, and a token, on a server that is not there.
    json remote = record(alpha_, "alpha");
    remote["url"] = "https://alice:hunter2@127.0.0.1:9/t/tok-123/chan/noarch/alpha-1.0-0.conda";
    r = gate(request({remote}).dump());
    EXPECT_EQ(r.status, 2) << r.out << r.err;
    EXPECT_EQ(json::parse(r.out)["status"], "error");
    // A URL that is not a package, and a request broken inside a URL.
    json odd = record(alpha_, "alpha");
    odd["url"] = "https://alice:hunter2@127.0.0.1:9/t/tok-123/not-a-package";
    const RunResult bad_url = gate(request({odd}).dump());
    EXPECT_EQ(bad_url.status, 2) << bad_url.out;
    EXPECT_NE(bad_url.err.find("records[0].url"), std::string::npos) << bad_url.err;
    std::string broken = request({remote}).dump();
    broken.insert(broken.find("tok-123") + 7, "\n");  // a raw newline inside a string
    const RunResult syntax = gate(broken);
    EXPECT_EQ(syntax.status, 2) << syntax.out;
    for (const RunResult* run : std::initializer_list<const RunResult*>{&r, &bad_url, &syntax})
        for (const std::string& out : {run->out, run->err}) {
            EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
            EXPECT_EQ(out.find("tok-123"), std::string::npos) << out;
        }
}

TEST_F(GuardGate, A12_malformed_requests_stop_with_an_error_document) {
    const json good = request({record(alpha_, "alpha")});
    expect_stopped("", "standard input");
    expect_stopped("not json", "standard input");
    expect_stopped("[]", "not a JSON object");
    expect_stopped(good.dump() + " {}", "standard input");
    json j = good;
    j.erase("version");
    expect_stopped(j.dump(), "no version");
    j = good;
    j["version"] = 2;
    expect_stopped(j.dump(), "version 1");
    j = good;
    j["dryrun"] = true;  // misspelt: must not become a real run
    expect_stopped(j.dump(), "unknown key");
    j = good;
    j["dry_run"] = "yes";
    expect_stopped(j.dump(), "dry_run");
    j = good;
    j["pkgs_dirs"] = json::array();
    expect_stopped(j.dump(), "pkgs_dirs");
    j = good;
    j["pkgs_dirs"] = {"relative/pkgs"};
    expect_stopped(j.dump(), "absolute");
    j = good;
    j["records"][0].erase("url");
    expect_stopped(j.dump(), "records[0] has no url");
    j = good;
    j["records"][0]["sha256"] = 5;
    expect_stopped(j.dump(), "records[0].sha256");
    expect_stopped(std::string(100, '[') + std::string(100, ']'), "nesting");
}

TEST_F(GuardGate, A25_duplicate_keys_refused) {
    const std::string good = request({record(alpha_, "alpha")}).dump();
    // Two meanings of one document: the top level, and a record's url.
    expect_stopped("{\"dry_run\":true," + good.substr(1), "duplicate key 'dry_run'");
    std::string twice = good;
    const std::string at = "{\"build\"";
    ASSERT_NE(twice.find(at), std::string::npos) << twice;
    twice.replace(twice.find(at), at.size(), "{\"url\":\"file:///elsewhere/noarch/alpha-1.0-0.conda\",\"build\"");
    expect_stopped(twice, "duplicate key 'url'");
}

TEST_F(GuardGate, A12_oversized_request_refused) {
    Deadline d(60);
    std::string big = request({record(alpha_, "alpha")}).dump();
    big.append((std::size_t{64} << 20) + 1 - big.size(), ' ');
    expect_stopped(big, "larger than 67108864 bytes");
}

TEST_F(GuardGate, A19_unusable_package_directory_stops_the_run) {
    write_file(pkgs(), "not a directory");
    const RunResult r = gate(request({record(alpha_, "alpha")}).dump());
    EXPECT_EQ(r.status, 2) << r.out;
    json doc = json::parse(r.out);
    EXPECT_EQ(doc["status"], "error");
    EXPECT_NE(doc["message"].get<std::string>().find(pkgs().string()), std::string::npos) << doc["message"];
}

TEST_F(GuardGate, DryRunVerifiesRecordsAndCreatesNoDirectory) {
    stdfs::remove(alpha_.string() + ".sig");  // not fetched, so not missed
    json bad = record(beta_, "beta");
    bad["sha256"] = std::string(64, 'a');
    json req = request({record(alpha_, "alpha"), bad}, true);
    req["pkgs_dirs"] = {pkgs().string(), (t_ / "other").string()};
    json doc = answer(req.dump(), 1);
    EXPECT_EQ(doc["dry_run"], true);
    EXPECT_EQ(doc["indexes"][0]["verdict"], "VALID");
    EXPECT_EQ(doc["packages"][0]["verdict"], "VALID") << doc["packages"][0]["reason"];
    EXPECT_EQ(doc["packages"][0]["reason"], dry_run_words);
    EXPECT_TRUE(doc["packages"][0]["placed"].is_null());
    EXPECT_EQ(doc["packages"][1]["verdict"], "INVALID") << "records are still judged";
    EXPECT_FALSE(stdfs::exists(pkgs()));
    EXPECT_FALSE(stdfs::exists(t_ / "other"));
}

TEST_F(GuardGate, DryRunStillRefusesAnUnsignedIndex) {
    stdfs::remove(ch() / "noarch" / "repodata.json.sig");
    write_file(t_ / "policy.yaml", "channels:\n  - match: " + url(ch()) + "\n    index: required\n", 0600);
    const RunResult r =
        gate(request({record(alpha_, "alpha")}, true).dump(), {"--policy", (t_ / "policy.yaml").string()});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    json doc = json::parse(r.out);
    EXPECT_EQ(doc["indexes"][0]["verdict"], "MISSING_SIG");
    EXPECT_EQ(doc["packages"][0]["verdict"], "MISSING_SIG");
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(GuardGate, A1_signatures_none_answers_UNVERIFIED_with_its_rule_and_exit_0) {
    for (const auto& e : stdfs::directory_iterator(ch() / "noarch"))
        if (e.path().extension() == ".sig") stdfs::remove(e.path());
    const std::string input = request({record(alpha_, "alpha"), record(beta_, "beta")}).dump();
    // No rule: refused as ever.
    json doc = answer(input, 1);
    EXPECT_EQ(doc["status"], "fail");
    EXPECT_EQ(doc["packages"][0]["verdict"], "MISSING_SIG");
    EXPECT_FALSE(doc["packages"][0].contains("unsigned_channel"));
    const stdfs::path policy = t_ / "policy.yaml";
    write_file(policy, "channels:\n  - match: " + url(ch()) + "\n    signatures: none\n", 0600);
    const RunResult r = gate(input, {"--policy", policy.string()});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    doc = json::parse(r.out);
    EXPECT_EQ(doc["status"], "ok");
    EXPECT_EQ(doc["indexes"][0]["verdict"], "UNVERIFIED");
    for (int i : {0, 1}) {
        const json& p = doc["packages"][i];
        EXPECT_EQ(p["verdict"], "UNVERIFIED") << p["reason"];
        EXPECT_EQ(p["unsigned_channel"], url(ch()));
        EXPECT_NE(p["reason"].get<std::string>().find(policy.string() + ":3:17"), std::string::npos) << p["reason"];
        EXPECT_TRUE(p["placed"].is_string());
    }
    EXPECT_TRUE(stdfs::is_regular_file(pkgs() / "alpha-1.0-0" / "info" / "repodata_record.json"));
    // A dry run gives the same verdicts and downloads nothing.
    stdfs::remove_all(pkgs());
    const RunResult d = gate(request({record(alpha_, "alpha")}, true).dump(), {"--policy", policy.string()});
    ASSERT_EQ(d.status, 0) << d.out << d.err;
    doc = json::parse(d.out);
    EXPECT_EQ(doc["packages"][0]["verdict"], "UNVERIFIED");
    EXPECT_EQ(doc["packages"][0]["placed"], nullptr);
    EXPECT_FALSE(stdfs::exists(pkgs()));
}

TEST_F(GuardGate, A26_ssl_verify_false_warns_on_stderr_only) {
    write_file(t_ / "condarc.yml", "ssl_verify: false\n");
    std::vector<std::string> e = env();
    e.push_back("CONDARC=" + (t_ / "condarc.yml").string());
    const RunResult r = run({conda_guard_exe(), "gate"}, e, request({record(alpha_, "alpha")}).dump());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("warning: ssl_verify is false"), std::string::npos) << r.err;
    EXPECT_TRUE(json::accept(r.out)) << r.out;
}

}  // namespace
