// conda-sign as users run it: flags, output lines, files written, exit codes.
#include <condaguard/trust/sigfile.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

struct Line {
    std::string path, verdict, reason;
};

// The text format of verification lines: the path column as wide as the
// longest path, the verdict column as wide as UNTRUSTED_KEY, two spaces apart.
std::string golden(const std::vector<Line>& lines) {
    std::size_t width = 0;
    for (const auto& l : lines) width = std::max(width, l.path.size());
    std::string out;
    for (const auto& l : lines) out += fmt::format("{:<{}}  {:<13}  {}\n", l.path, width, l.verdict, l.reason);
    return out;
}

class CondaSign : public ::testing::Test {
protected:
    RunResult cs(std::vector<std::string> args, std::vector<std::string> env = {}) {
        return run_isolated(conda_sign_exe(), std::move(args), t_.path(), std::move(env));
    }
    RunResult cs_keys(std::vector<std::string> args) {
        args.insert(args.begin(), {"--keys-dir", keys().string()});
        return cs(std::move(args));
    }
    stdfs::path keys() const { return t_ / "keys"; }
    stdfs::path file(const std::string& name, const std::string& content = "package bytes\n") {
        write_file(t_ / name, content);
        return t_ / name;
    }
    TempDir t_;
};

}  // namespace

TEST_F(CondaSign, KeygenWritesBothFilesWithSafeModesAndPrintsPaths) {
    RunResult r = cs_keys({"--keygen", "MyKey"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("Storing private key: " + (keys() / "MyKey").string() + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Storing public key : " + (keys() / "MyKey.pub").string() + "\n"), std::string::npos);
    EXPECT_EQ(file_mode(keys()), 0700u);
    EXPECT_EQ(file_mode(keys() / "MyKey"), 0600u);
    EXPECT_EQ(read_file(keys() / "MyKey").rfind("-----BEGIN RSA PRIVATE KEY-----\n", 0), 0u);
    EXPECT_EQ(read_file(keys() / "MyKey.pub").rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
    EXPECT_EQ(PublicKey::from_pem(read_file(keys() / "MyKey.pub"), "p", {}).bits(), 2048u);
}

TEST_F(CondaSign, KeygenNeverOverwritesWithoutForce) {
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    const std::string before = read_file(keys() / "MyKey");
    RunResult r = cs_keys({"--keygen", "MyKey"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("already exists (use --force"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(keys() / "MyKey"), before);
    ASSERT_EQ(cs_keys({"--keygen", "MyKey", "--force"}).status, 0);
    EXPECT_NE(read_file(keys() / "MyKey"), before);
    EXPECT_EQ(file_mode(keys() / "MyKey"), 0600u);
}

TEST_F(CondaSign, KeygenRefusesSmallKeysAndBadNames) {
    RunResult r = cs_keys({"--keygen", "small", "--size", "1024"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("RSA keys under 2048 bits are refused"), std::string::npos) << r.err;
    EXPECT_FALSE(stdfs::exists(keys() / "small"));
    for (const char* bad : {"../x", ".hidden", "/abs", "a..b"}) {
        RunResult b = cs_keys({"--keygen", bad});
        EXPECT_EQ(b.status, 2) << bad;
        EXPECT_NE(b.err.find("key name"), std::string::npos) << b.err;
    }
    EXPECT_EQ(cs_keys({"--size", "4096"}).status, 2) << "--size needs --keygen";
}

TEST_F(CondaSign, KeygenSizeAndEd25519) {
    ASSERT_EQ(cs_keys({"--keygen", "big", "--size", "3072"}).status, 0);
    EXPECT_EQ(PublicKey::from_pem(read_file(keys() / "big.pub"), "p", {}).bits(), 3072u);
    RunResult r = cs_keys({"--keygen", "ed", "--type", "ed25519", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["key"]["type"], "ed25519");
    EXPECT_EQ(j["key"]["private_key"], (keys() / "ed").string());
    stdfs::path f = file("pkg.conda");
    ASSERT_EQ(cs_keys({"-i", "ed", f.string()}).status, 0);
    RunResult v = cs_keys({"--verify", f.string()});
    EXPECT_EQ(v.status, 0) << v.out;
}

TEST_F(CondaSign, SignsWithTheOnlyKeyAndRefusesWhenAmbiguous) {
    stdfs::path f = file("pkg-1.0-0.tar.bz2");
    RunResult none = cs_keys({f.string()});
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.err.find("no private key in " + keys().string()), std::string::npos) << none.err;
    ASSERT_EQ(cs_keys({"--keygen", "alpha"}).status, 0);
    RunResult one = cs_keys({f.string()});
    ASSERT_EQ(one.status, 0) << one.err;
    EXPECT_NE(one.out.find("Using private key 'alpha'"), std::string::npos);
    EXPECT_NE(one.out.find("signing: " + f.string()), std::string::npos);
    EXPECT_EQ(read_file(f.string() + ".sig").rfind("alpha ", 0), 0u);
    ASSERT_EQ(cs_keys({"--keygen", "beta"}).status, 0);
    stdfs::remove(f.string() + ".sig");
    RunResult two = cs_keys({f.string()});
    EXPECT_EQ(two.status, 2);
    EXPECT_NE(two.err.find("several private keys in " + keys().string() + " (alpha, beta)"), std::string::npos)
        << two.err;
    EXPECT_FALSE(stdfs::exists(f.string() + ".sig"));
    ASSERT_EQ(cs_keys({"-i", "beta", f.string()}).status, 0);
    EXPECT_EQ(read_file(f.string() + ".sig").rfind("beta ", 0), 0u);
}

TEST_F(CondaSign, InputKeyPathWritesTheKeyFileNameNotThePath) {
    ASSERT_EQ(cs_keys({"--keygen", "teamkey"}).status, 0);
    stdfs::create_directories(t_ / "elsewhere");
    stdfs::copy_file(keys() / "teamkey", t_ / "elsewhere" / "teamkey");
    stdfs::path f = file("pkg.conda");
    RunResult r = cs({"--keys-dir", keys().string(), "-i", (t_ / "elsewhere" / "teamkey").string(), f.string()});
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string sig = read_file(f.string() + ".sig");
    EXPECT_EQ(sig.rfind("teamkey ", 0), 0u) << sig;
    EXPECT_EQ(sig.find('/'), sig.find('/', 8)) << "no path in the key name token";
    EXPECT_EQ(cs_keys({"--verify", f.string()}).status, 0);
}

TEST_F(CondaSign, A6_signing_key_readable_by_others_is_refused) {
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    ::chmod((keys() / "MyKey").c_str(), 0644);
    stdfs::path f = file("pkg.conda");
    RunResult r = cs_keys({f.string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("BAD_KEY: " + (keys() / "MyKey").string() + ": private key is readable by group or others"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(stdfs::exists(f.string() + ".sig"));
}

TEST_F(CondaSign, VerifyLinesAndExitCodes) {
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    stdfs::path a = file("a-1.0-0.conda", "aaa"), b = file("b-1.0-0.conda", "bbb");
    ASSERT_EQ(cs_keys({a.string(), b.string()}).status, 0);
    const std::string fp = PublicKey::from_pem(read_file(keys() / "MyKey.pub"), "p", {}).fingerprint();

    const std::string short_fp = fp.substr(0, 16);
    RunResult ok = cs_keys({"--verify", a.string(), b.string()});
    EXPECT_EQ(ok.status, 0);
    EXPECT_EQ(ok.out, golden({{a.string(), "VALID", "signed by key MyKey (" + short_fp + ")"},
                              {b.string(), "VALID", "signed by key MyKey (" + short_fp + ")"}}));
    RunResult verbose = cs_keys({"--verify", "--verbose", a.string(), b.string()});
    EXPECT_EQ(verbose.out, golden({{a.string(), "VALID", "signed by key MyKey (" + fp + ")"},
                                   {b.string(), "VALID", "signed by key MyKey (" + fp + ")"}}));

    write_file(b, "bbB");
    RunResult bad = cs_keys({"-v", a.string(), b.string()});
    EXPECT_EQ(bad.status, 1);
    EXPECT_EQ(bad.out, golden({{a.string(), "VALID", "signed by key MyKey (" + short_fp + ")"},
                               {b.string(), "INVALID", "digest does not match signature (key MyKey, " + short_fp + ")"}}));

    stdfs::remove(a.string() + ".sig");
    RunResult missing = cs_keys({"--verify", a.string()});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.out.find("MISSING_SIG"), std::string::npos);

    RunResult io = cs_keys({"--verify", b.string(), (t_ / "nope.conda").string()});
    EXPECT_EQ(io.status, 2);
    EXPECT_NE(io.out.find("ERROR"), std::string::npos);

    EXPECT_EQ(cs_keys({"--verify"}).status, 2);
    EXPECT_EQ(cs_keys({"--bogus-flag"}).status, 2);
}

TEST_F(CondaSign, VerifyJsonHasVersionAndVerdicts) {
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    stdfs::path a = file("a.conda");
    ASSERT_EQ(cs_keys({a.string()}).status, 0);
    RunResult r = cs_keys({"--verify", "--json", a.string(), (t_ / "none.conda").string()});
    EXPECT_EQ(r.status, 2);
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["status"], "error");
    ASSERT_EQ(j["results"].size(), 2u);
    EXPECT_EQ(j["results"][0]["verdict"], "VALID");
    EXPECT_EQ(j["results"][0]["key"], "MyKey");
    EXPECT_EQ(j["results"][0]["fingerprint"].get<std::string>().size(), 64u);
    EXPECT_EQ(j["results"][1]["verdict"], "ERROR");
}

TEST_F(CondaSign, KeysDirFromOptionEnvironmentOrHome) {
    RunResult home = cs({"--keygen", "homekey"});
    ASSERT_EQ(home.status, 0) << home.err;
    EXPECT_TRUE(stdfs::exists(t_ / ".conda" / "keys" / "homekey.pub"));
    RunResult env = cs({"--keygen", "envkey"}, {"CONDA_KEYS_DIR=" + (t_ / "envkeys").string()});
    ASSERT_EQ(env.status, 0) << env.err;
    EXPECT_TRUE(stdfs::exists(t_ / "envkeys" / "envkey.pub"));
    RunResult opt = cs({"--keys-dir", (t_ / "optkeys").string(), "--keygen", "optkey"},
                       {"CONDA_KEYS_DIR=" + (t_ / "envkeys").string()});
    ASSERT_EQ(opt.status, 0);
    EXPECT_TRUE(stdfs::exists(t_ / "optkeys" / "optkey.pub"));
}

TEST_F(CondaSign, ImportKeyCopiesAndWritesPub) {
    const PrivateKey& k = cached_key(KeyType::Rsa, 2048);
    write_file(t_ / "backup.pem", k.to_pem(), 0600);
    RunResult r = cs_keys({"--import-key", (t_ / "backup.pem").string(), "--name", "restored"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(read_file(keys() / "restored"), k.to_pem());
    EXPECT_EQ(read_file(keys() / "restored.pub"), k.public_key().to_pem());
    EXPECT_EQ(file_mode(keys() / "restored"), 0600u);
    EXPECT_EQ(cs_keys({"--import-key", (t_ / "backup.pem").string(), "--name", "restored"}).status, 2);
    write_file(t_ / "open.pem", k.to_pem(), 0644);
    RunResult open = cs_keys({"--import-key", (t_ / "open.pem").string()});
    EXPECT_EQ(open.status, 1);
    EXPECT_NE(open.err.find("BAD_KEY"), std::string::npos);
    EXPECT_FALSE(stdfs::exists(keys() / "open.pem"));
}

TEST_F(CondaSign, MinKeyBitsWarnsAndIsBounded) {
    const PrivateKey& small = cached_key(KeyType::Rsa, 1024);
    stdfs::create_directories(keys());
    ::chmod(keys().c_str(), 0700);
    write_file(keys() / "old.pub", small.public_key().to_pem());
    stdfs::path f = file("old.conda");
    write_file(f.string() + ".sig", format_sig_file(KeyName("old"), raw_rsa_sign(small, sha256_bytes("package bytes\n"), RawScheme::Pss)));
    RunResult strict = cs_keys({"--verify", f.string()});
    EXPECT_EQ(strict.status, 1);
    EXPECT_NE(strict.out.find("BAD_KEY"), std::string::npos);
    RunResult lowered = cs_keys({"--min-key-bits", "1024", "--verify", f.string()});
    EXPECT_EQ(lowered.status, 0) << lowered.out << lowered.err;
    EXPECT_NE(lowered.err.find("warning: accepting RSA keys of 1024 bits"), std::string::npos) << lowered.err;
    EXPECT_EQ(cs_keys({"--min-key-bits", "512", "--verify", f.string()}).status, 2);
}

TEST_F(CondaSign, HelpDescribesTheFlags) {
    RunResult r = cs({"--help"});
    EXPECT_EQ(r.status, 0);
    for (const char* flag : {"--keygen", "--size", "--verify", "--input-key", "--import-key", "--keys-dir", "--json",
                             "--min-key-bits", "--force", "--type"})
        EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

// Every option --help lists is documented in the man page.
TEST_F(CondaSign, ManPageDocumentsEveryOption) {
    const char* src = std::getenv("CONDAGUARD_SOURCE_DIR");
    ASSERT_NE(src, nullptr);
    std::string man = read_file(stdfs::path(src) / "man" / "conda-sign.1");
    std::erase(man, '\\');  // roff escapes: \-\-keygen -> --keygen
    RunResult help = cs({"--help"});
    std::size_t pos = 0, count = 0;
    while ((pos = help.out.find("--", pos)) != std::string::npos) {
        std::size_t end = help.out.find_first_of(" ,:\n", pos);
        const std::string flag = help.out.substr(pos, end - pos);
        pos = end;
        if (flag == "--help" || flag == "--") continue;
        EXPECT_NE(man.find(flag), std::string::npos) << flag << " is not in man/conda-sign.1";
        ++count;
    }
    EXPECT_GE(count, 10u);
    for (const char* word : {"EXIT STATUS", "VERIFICATION POLICY", "EXAMPLES", "MISSING_SIG", "BAD_SIG_FILE"})
        EXPECT_NE(man.find(word), std::string::npos) << word;
}

// Memory does not grow with file size: verifying a 512 MiB file peaks at
// about the same RSS as verifying a 1 MiB one.
TEST_F(CondaSign, StreamingMemoryDoesNotGrowWithFileSize) {
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    stdfs::path small = file("small.bin", std::string(1 << 20, 's'));
    stdfs::path big = t_ / "big.bin";
    {
        int fd = ::open(big.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, off_t{512} << 20), 0);  // sparse: cheap to make, real to read
        ::close(fd);
    }
    ASSERT_EQ(cs_keys({small.string(), big.string()}).status, 0);
    RunResult rs = cs_keys({"--verify", small.string()});
    RunResult rb = cs_keys({"--verify", big.string()});
    ASSERT_EQ(rs.status, 0);
    ASSERT_EQ(rb.status, 0);
    // Relative, so it holds under sanitizers too; the benchmark reports the absolute peak.
    EXPECT_LT(rb.max_rss_kib - rs.max_rss_kib, 4 * 1024) << "small " << rs.max_rss_kib << " KiB, big "
                                                          << rb.max_rss_kib << " KiB";
}

// Options cannot swallow operands: each value-taking option, put before the
// files, takes exactly one value, and every file is still signed or checked.
TEST_F(CondaSign, A19_sign_options_do_not_swallow_files) {
    Deadline d(60);
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    stdfs::path a = file("a-1.0-0.conda", "aaa"), b = file("b-1.0-0.conda", "bbb");
    RunResult r = cs({"--keys-dir", keys().string(), "--min-key-bits", "2048", "-i", "MyKey", a.string(), b.string()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(stdfs::exists(a.string() + ".sig"));
    EXPECT_TRUE(stdfs::exists(b.string() + ".sig"));
    // --keygen takes one name: a second word is a file, which --keygen refuses.
    EXPECT_EQ(cs_keys({"--keygen", "one", "two"}).status, 2);
    EXPECT_FALSE(stdfs::exists(keys() / "one"));
    EXPECT_EQ(cs_keys({"--keygen", "big", "--size", "3072", "--type", "rsa", "extra"}).status, 2);
    EXPECT_FALSE(stdfs::exists(keys() / "big"));
}

TEST_F(CondaSign, A19_verify_options_do_not_swallow_files) {
    Deadline d(60);
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    stdfs::path a = file("a-1.0-0.conda", "aaa"), b = file("b-1.0-0.conda", "bbb");
    ASSERT_EQ(cs_keys({a.string(), b.string()}).status, 0);
    write_file(a, "aaA");  // the first file is bad: it must be checked, not swallowed
    RunResult r = cs({"--verify", "--keys-dir", keys().string(), "--min-key-bits", "2048", a.string(), b.string(),
                      "--json"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["results"].size(), 2u);
    EXPECT_EQ(j["results"][0]["path"], a.string());
    EXPECT_EQ(j["results"][0]["verdict"], "INVALID");
    EXPECT_EQ(j["results"][1]["verdict"], "VALID");
}

// Output cannot be forged: a file name with a newline and an ANSI escape is
// one line with the escapes visible; the signing lines escape it too.
TEST_F(CondaSign, A19_control_characters_in_names_are_escaped) {
    Deadline d(60);
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    stdfs::path evil = file("x\nfake.conda  VALID  \x1b[2K\x7f\xff.conda", "bytes");
    RunResult s = cs_keys({evil.string()});
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_NE(s.out.find("signing: " + (t_ / "x\\nfake.conda  VALID  \\x1b[2K\\x7f\\xff.conda").string() + "\n"),
              std::string::npos)
        << s.out;
    write_file(evil, "other bytes");
    RunResult v = cs_keys({"--verify", evil.string()});
    EXPECT_EQ(v.status, 1);
    EXPECT_EQ(std::count(v.out.begin(), v.out.end(), '\n'), 1) << v.out;
    EXPECT_EQ(v.out.find('\x1b'), std::string::npos);
    EXPECT_EQ(v.out.rfind((t_ / "x\\nfake.conda  VALID  \\x1b[2K\\x7f\\xff.conda  INVALID  ").string(), 0), 0u) << v.out;
}

// A flag takes no value: `--verify=false` once switched conda-sign to signing
// and overwrote every .sig (found in review).
TEST_F(CondaSign, A19_flags_take_no_value) {
    Deadline d(60);
    ASSERT_EQ(cs_keys({"--keygen", "MyKey"}).status, 0);
    stdfs::path a = file("a-1.0-0.conda", "aaa");
    ASSERT_EQ(cs_keys({a.string()}).status, 0);
    const std::string sig = read_file(a.string() + ".sig");
    for (const char* flag : {"--verify=false", "--verify=0", "--json=1", "--force=no"}) {
        RunResult r = cs_keys({flag, a.string()});
        EXPECT_EQ(r.status, 2) << flag << ": " << r.out << r.err;
        EXPECT_EQ(read_file(a.string() + ".sig"), sig) << flag << " changed the signature";
    }
}
