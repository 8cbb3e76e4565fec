// Key files, the keys directory and the key policy (threats A3, A6, A18).
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

// Runs `f`, expects it to throw VerdictError `v` whose message contains `path` and `fragment`.
template <class F>
void expect_verdict(F f, Verdict v, const std::string& path, const std::string& fragment) {
    try {
        f();
        FAIL() << "no verdict thrown, expected " << to_string(v);
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), v) << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Keys, GeneratedRsaKeyHasTheOldFormats) {
    const PrivateKey& k = cached_key(KeyType::Rsa, 2048);
    EXPECT_EQ(k.public_key().bits(), 2048u);
    EXPECT_EQ(k.public_key().signature_size(), 256u);
    const std::string priv = k.to_pem();
    EXPECT_EQ(priv.rfind("-----BEGIN RSA PRIVATE KEY-----\n", 0), 0u);
    EXPECT_TRUE(priv.ends_with("-----END RSA PRIVATE KEY-----\n"));
    const std::string pub = k.public_key().to_pem();
    EXPECT_EQ(pub.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
    EXPECT_TRUE(pub.ends_with("-----END PUBLIC KEY-----\n"));
    // Round trip, same fingerprint.
    KeyPolicy p;
    EXPECT_EQ(PrivateKey::from_pem(priv, "k", p).public_key().fingerprint(), k.public_key().fingerprint());
    EXPECT_EQ(PublicKey::from_pem(pub, "k.pub", p).fingerprint(), k.public_key().fingerprint());
    EXPECT_EQ(k.public_key().fingerprint().size(), 64u);
}

TEST(Keys, Ed25519KeysUsePkcs8AndSpki) {
    const PrivateKey& k = cached_key(KeyType::Ed25519, 0);
    EXPECT_EQ(k.type(), KeyType::Ed25519);
    EXPECT_EQ(k.public_key().signature_size(), 64u);
    EXPECT_EQ(k.to_pem().rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
    KeyPolicy p;
    EXPECT_EQ(PrivateKey::from_pem(k.to_pem(), "k", p).public_key().fingerprint(), k.public_key().fingerprint());
}

TEST(Keys, StoreCreatesModesAndRefusesOverwrite) {
    TempDir t;
    KeyStore store(t / "nested" / "keys");
    const PrivateKey& k = cached_key(KeyType::Rsa, 2048);
    auto paths = store.store(KeyName("MyKey"), k, false);
    EXPECT_EQ(file_mode(t / "nested" / "keys"), 0700u);
    EXPECT_EQ(file_mode(paths.private_key), 0600u);
    EXPECT_EQ(file_mode(paths.public_key), 0644u);
    EXPECT_EQ(read_file(paths.private_key), k.to_pem());
    EXPECT_THROW(store.store(KeyName("MyKey"), cached_key(KeyType::Rsa, 2048, 1), false), std::runtime_error);
    EXPECT_EQ(read_file(paths.private_key), k.to_pem()) << "refused overwrite must leave the key alone";
    store.store(KeyName("MyKey"), cached_key(KeyType::Rsa, 2048, 1), true);
    EXPECT_EQ(read_file(paths.private_key), cached_key(KeyType::Rsa, 2048, 1).to_pem());
    EXPECT_EQ(file_mode(paths.private_key), 0600u);
    EXPECT_EQ(store.private_key_names(), std::vector<std::string>{"MyKey"});
    EXPECT_EQ(store.public_key_names(), std::vector<std::string>{"MyKey"});
    EXPECT_EQ(store.load_private(KeyName("MyKey")).public_key().fingerprint(),
              store.load_public(KeyName("MyKey")).fingerprint());
}

TEST(Keys, A3_unknown_key_is_missing_key) {
    Keys k;
    k.add("present");
    KeyStore store(k.keys());
    expect_verdict([&] { store.load_public(KeyName("absent")); }, Verdict::MissingKey,
                   (k.keys() / "absent.pub").string(), "no such key file");
    KeyStore nodir(k.dir / "nowhere");
    expect_verdict([&] { nodir.load_public(KeyName("present")); }, Verdict::MissingKey, "nowhere",
                   "keys directory does not exist");
}

TEST(Keys, A6_key_file_symlink_is_bad_key) {
    Keys k;
    k.add("real");
    stdfs::create_symlink(k.keys() / "real.pub", k.keys() / "link.pub");
    stdfs::create_symlink(k.keys() / "real", k.keys() / "link");
    KeyStore store(k.keys());
    expect_verdict([&] { store.load_public(KeyName("link")); }, Verdict::BadKey, "link.pub", "symbolic link");
    expect_verdict([&] { store.load_private(KeyName("link")); }, Verdict::BadKey, "link", "symbolic link");
}

TEST(Keys, A6_writable_key_file_or_dir_is_bad_key) {
    Keys k;
    k.add("MyKey");
    KeyStore store(k.keys());
    ::chmod((k.keys() / "MyKey.pub").c_str(), 0666);
    expect_verdict([&] { store.load_public(KeyName("MyKey")); }, Verdict::BadKey, "MyKey.pub",
                   "writable by group or others (mode 0666)");
    ::chmod((k.keys() / "MyKey.pub").c_str(), 0644);
    EXPECT_NO_THROW(store.load_public(KeyName("MyKey")));
    ::chmod(k.keys().c_str(), 0777);
    expect_verdict([&] { store.load_public(KeyName("MyKey")); }, Verdict::BadKey, k.keys().string(),
                   "keys directory " + k.keys().string() + " is writable by group or others (mode 0777)");
    ::chmod(k.keys().c_str(), 0700);
}

TEST(Keys, A6_private_key_readable_by_others_is_bad_key) {
    Keys k;
    k.add("MyKey");
    KeyStore store(k.keys());
    for (mode_t m : {0640, 0604, 0644}) {
        ::chmod((k.keys() / "MyKey").c_str(), m);
        expect_verdict([&] { store.load_private(KeyName("MyKey")); }, Verdict::BadKey, (k.keys() / "MyKey").string(),
                       "readable by group or others");
        expect_verdict([&] { load_private_key_file(k.keys() / "MyKey", KeyPolicy{}); }, Verdict::BadKey, "MyKey",
                       "chmod 600");
    }
    ::chmod((k.keys() / "MyKey").c_str(), 0400);
    EXPECT_NO_THROW(store.load_private(KeyName("MyKey")));
}

TEST(Keys, A18_small_rsa_keys_are_bad_key_unless_floor_lowered) {
    const PrivateKey& small = cached_key(KeyType::Rsa, 1024);
    const std::string pem = small.public_key().to_pem();
    expect_verdict([&] { PublicKey::from_pem(pem, "old.pub", KeyPolicy{}); }, Verdict::BadKey, "old.pub",
                   "RSA key is 1024 bits, below the minimum of 2048");
    EXPECT_EQ(PublicKey::from_pem(pem, "old.pub", KeyPolicy{.min_rsa_bits = 1024}).bits(), 1024u);
    expect_verdict([&] { PrivateKey::from_pem(small.to_pem(), "old", KeyPolicy{}); }, Verdict::BadKey, "old",
                   "1024 bits");
}

TEST(Keys, PubFileHoldingPrivateKeyIsBadKey) {
    const PrivateKey& k = cached_key(KeyType::Rsa, 2048);
    expect_verdict([&] { PublicKey::from_pem(k.to_pem(), "x.pub", KeyPolicy{}); }, Verdict::BadKey, "x.pub",
                   "private key material");
    // A public block followed by a private one is refused too.
    expect_verdict([&] { PublicKey::from_pem(k.public_key().to_pem() + k.to_pem(), "x.pub", KeyPolicy{}); },
                   Verdict::BadKey, "x.pub", "private key material");
}

TEST(Keys, NonKeysAreBadKey) {
    const PrivateKey& k = cached_key(KeyType::Rsa, 2048);
    const std::string pub = k.public_key().to_pem();
    KeyPolicy p;
    expect_verdict([&] { PublicKey::from_pem("", "e.pub", p); }, Verdict::BadKey, "e.pub", "not a PEM public key");
    expect_verdict([&] { PublicKey::from_pem("hello world\n", "g.pub", p); }, Verdict::BadKey, "g.pub", "not a PEM");
    expect_verdict([&] { PublicKey::from_pem(pub.substr(0, pub.size() / 2), "h.pub", p); }, Verdict::BadKey, "h.pub",
                   "not a PEM");
    expect_verdict([&] { PublicKey::from_pem(pub + pub, "two.pub", p); }, Verdict::BadKey, "two.pub",
                   "more than one PEM block");
    std::string label = pub;
    label.replace(label.find("PUBLIC KEY"), 10, "CERTIFICATE");
    label.replace(label.rfind("PUBLIC KEY"), 10, "CERTIFICATE");
    expect_verdict([&] { PublicKey::from_pem(label, "c.pub", p); }, Verdict::BadKey, "c.pub",
                   "'CERTIFICATE' is not a public key");
    expect_verdict([&] { PublicKey::from_pem(ec_public_pem(), "ec.pub", p); }, Verdict::BadKey, "ec.pub",
                   "unsupported key type EC");
    expect_verdict([&] { PrivateKey::from_pem(ec_private_pem(), "ec", p); }, Verdict::BadKey, "ec",
                   "unsupported key type EC");
    expect_verdict([&] { PrivateKey::from_pem(rsa_private_pem_pkcs8_encrypted(k), "enc", p); }, Verdict::BadKey,
                   "enc", "encrypted private keys are not supported");
}

TEST(Keys, OversizedKeyFileIsBadKey) {
    Keys k;
    k.add("MyKey");
    write_file(k.keys() / "big.pub", std::string(16 * 1024 + 1, '\n'));
    KeyStore store(k.keys());
    expect_verdict([&] { store.load_public(KeyName("big")); }, Verdict::BadKey, "big.pub", "larger than 16384");
}

