// Verification verdicts on generated data: one change per test, one verdict.
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/signer.hpp>
#include <condaguard/trust/verifier.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

class Verify : public ::testing::Test {
protected:
    void SetUp() override {
        key_ = &keys_.add("MyKey");
        file_ = keys_.dir / "pkg-1.0-0.conda";
        write_file(file_, content_);
        sign_file(file_, KeyName("MyKey"), *key_);
    }
    Result verify(const stdfs::path& f) {
        KeyStore store(keys_.keys(), policy_);
        Verifier v(store);
        return v.verify_file(f);
    }
    void write_sig(const std::string& name, std::span<const unsigned char> sig) {
        write_file(stdfs::path(file_.string() + ".sig"), format_sig_file(KeyName(name), sig));
    }
    Keys keys_;
    KeyPolicy policy_;
    const PrivateKey* key_ = nullptr;
    stdfs::path file_;
    std::string content_ = std::string(100000, 'x') + "payload";
};

}  // namespace

TEST_F(Verify, SignedFileIsValidAndNamesKeyAndFingerprint) {
    Result r = verify(file_);
    EXPECT_EQ(r.verdict, Verdict::Valid) << r.reason;
    EXPECT_EQ(r.key, "MyKey");
    EXPECT_EQ(r.fingerprint, key_->public_key().fingerprint());
    EXPECT_NE(r.reason.find(key_->public_key().fingerprint()), std::string::npos);
    // The .sig is exactly the old line format.
    const std::string sig = read_file(file_.string() + ".sig");
    EXPECT_EQ(sig.rfind("MyKey ", 0), 0u);
    EXPECT_EQ(sig.back(), '\n');
    EXPECT_EQ(sig.find('\n'), sig.size() - 1);
}

TEST_F(Verify, TamperedBytesAreInvalid) {
    std::string flipped = content_;
    flipped[5000] ^= 0x01;
    write_file(file_, flipped);
    Result r = verify(file_);
    EXPECT_EQ(r.verdict, Verdict::Invalid);
    EXPECT_NE(r.reason.find("key MyKey"), std::string::npos);
    write_file(file_, content_ + std::string(1, '\0'));
    EXPECT_EQ(verify(file_).verdict, Verdict::Invalid);
    write_file(file_, content_.substr(0, content_.size() - 1));
    EXPECT_EQ(verify(file_).verdict, Verdict::Invalid);
}

TEST_F(Verify, A2_missing_sig) {
    stdfs::remove(file_.string() + ".sig");
    Result r = verify(file_);
    EXPECT_EQ(r.verdict, Verdict::MissingSig);
    EXPECT_NE(r.reason.find(file_.string() + ".sig"), std::string::npos);
}

TEST_F(Verify, A3_unknown_key) {
    const auto sig = key_->sign_digest(sha256_bytes(content_));
    write_sig("SomeoneElse", sig);
    Result r = verify(file_);
    EXPECT_EQ(r.verdict, Verdict::MissingKey);
    EXPECT_NE(r.reason.find("SomeoneElse.pub"), std::string::npos);
}

TEST_F(Verify, OtherKeysSignatureIsInvalid) {
    const auto sig = cached_key(KeyType::Rsa, 2048, 1).sign_digest(sha256_bytes(content_));
    write_sig("MyKey", sig);
    EXPECT_EQ(verify(file_).verdict, Verdict::Invalid);
}

TEST_F(Verify, A18_pkcs1v15_and_other_pss_salts_are_invalid) {
    const auto digest = sha256_bytes(content_);
    for (RawScheme s : {RawScheme::Pkcs1v15, RawScheme::PssSalt20, RawScheme::PssSalt0, RawScheme::PssSalt32Mgf1Sha1}) {
        write_sig("MyKey", raw_rsa_sign(*key_, digest, s));
        Result r = verify(file_);
        EXPECT_EQ(r.verdict, Verdict::Invalid) << static_cast<int>(s) << ": " << r.reason;
    }
}

TEST_F(Verify, A17_wrong_signature_length_is_invalid) {
    auto sig = key_->sign_digest(sha256_bytes(content_));
    auto longer = sig;
    longer.insert(longer.begin(), 0);  // same integer, 257 bytes
    write_sig("MyKey", longer);
    Result r = verify(file_);
    EXPECT_EQ(r.verdict, Verdict::Invalid);
    EXPECT_NE(r.reason.find("257 bytes"), std::string::npos) << r.reason;
    sig.pop_back();
    write_sig("MyKey", sig);
    EXPECT_EQ(verify(file_).verdict, Verdict::Invalid);
}

TEST_F(Verify, A18_small_key_is_bad_key_by_default_and_valid_when_floor_lowered) {
    const PrivateKey& small = cached_key(KeyType::Rsa, 1024);
    write_file(keys_.keys() / "old.pub", small.public_key().to_pem());
    write_sig("old", raw_rsa_sign(small, sha256_bytes(content_), RawScheme::Pss));
    Result r = verify(file_);
    EXPECT_EQ(r.verdict, Verdict::BadKey);
    EXPECT_NE(r.reason.find("old.pub"), std::string::npos);
    policy_.min_rsa_bits = 1024;
    EXPECT_EQ(verify(file_).verdict, Verdict::Valid);
}

TEST_F(Verify, Ed25519SignsTheDigest) {
    const PrivateKey& ed = keys_.add("edkey", KeyType::Ed25519, 0);
    sign_file(file_, KeyName("edkey"), ed);
    Result r = verify(file_);
    EXPECT_EQ(r.verdict, Verdict::Valid) << r.reason;
    EXPECT_EQ(base64_decode_strict(read_file(file_.string() + ".sig").substr(6, 88))->size(), 64u);
    write_file(file_, content_ + "!");
    EXPECT_EQ(verify(file_).verdict, Verdict::Invalid);
}

TEST_F(Verify, A19_missing_file_is_error_not_valid) {
    Result r = verify(keys_.dir / "absent.conda");
    EXPECT_EQ(r.verdict, Verdict::Error);
    EXPECT_NE(r.path.find("absent.conda"), std::string::npos);
    EXPECT_EQ(r.reason, "does not exist");
    stdfs::create_directory(keys_.dir / "adir");
    r = verify(keys_.dir / "adir");
    EXPECT_EQ(r.verdict, Verdict::Invalid);
    EXPECT_EQ(r.reason, "is a directory, not a regular file");
}

TEST_F(Verify, BadKeyFileVerdictIsCachedAcrossFiles) {
    write_file(keys_.keys() / "MyKey.pub", "garbage\n");
    KeyStore store(keys_.keys());
    Verifier v(store);
    EXPECT_EQ(v.verify_file(file_).verdict, Verdict::BadKey);
    EXPECT_EQ(v.verify_file(file_).verdict, Verdict::BadKey);
}

// The file's bytes are read exactly once: verifying a pipe works, which it
// could not if the verifier re-read or re-opened the input.
TEST_F(Verify, StreamsTheInputOnceFromAPipe) {
    std::string big(8 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 24);
    write_file(file_, big);
    sign_file(file_, KeyName("MyKey"), *key_);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::thread writer([&] {
        std::string_view rest = big;
        while (!rest.empty()) {
            ssize_t n = ::write(fds[1], rest.data(), std::min<std::size_t>(rest.size(), 65536));
            if (n <= 0) break;
            rest.remove_prefix(static_cast<std::size_t>(n));
        }
        ::close(fds[1]);
    });
    KeyStore store(keys_.keys());
    Verifier v(store);
    Result r = v.verify_stream(fds[0], file_.string() + ".sig", "pipe");
    writer.join();
    ::close(fds[0]);
    EXPECT_EQ(r.verdict, Verdict::Valid) << r.reason;
}

// Parallel verification returns, in input order, exactly what one-by-one
// verification returns, across mixed verdicts and a shared key cache.
TEST_F(Verify, ParallelResultsMatchSequentialInOrder) {
    std::vector<stdfs::path> files;
    for (int i = 0; i < 60; ++i) {
        stdfs::path f = keys_.dir / ("p" + std::to_string(i) + ".conda");
        write_file(f, "content " + std::to_string(i));
        if (i % 5 != 1) sign_file(f, KeyName("MyKey"), *key_);   // every fifth: MISSING_SIG
        if (i % 5 == 2) write_file(f, "changed " + std::to_string(i));  // INVALID
        if (i % 5 == 3) write_file(stdfs::path(f.string() + ".sig"), "absent " + base64_encode(std::vector<unsigned char>(256)));
        files.push_back(f);
    }
    files.push_back(keys_.dir / "not-there.conda");  // ERROR
    KeyStore store(keys_.keys());
    Verifier par(store);
    const auto got = par.verify_files(files, 4);
    Verifier seq(store);
    ASSERT_EQ(got.size(), files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
        const Result want = seq.verify_file(files[i]);
        EXPECT_EQ(got[i].path, files[i].string());
        EXPECT_EQ(got[i].verdict, want.verdict) << files[i];
        EXPECT_EQ(got[i].reason, want.reason);
    }
    EXPECT_EQ(got[0].verdict, Verdict::Valid);
    EXPECT_EQ(got[1].verdict, Verdict::MissingSig);
    EXPECT_EQ(got[2].verdict, Verdict::Invalid);
    EXPECT_EQ(got[3].verdict, Verdict::MissingKey);
    EXPECT_EQ(got.back().verdict, Verdict::Error);
}
