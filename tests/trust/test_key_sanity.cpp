// Keys that anyone could forge signatures for, or that are malformed, are
// BAD_KEY wherever they are read (threat A18). The keys are built here with
// raw OpenSSL, since the library refuses to make them.
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verifier.hpp>

#include "../support/support.hpp"

#include <lib/openssl/handles.hpp>

#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include <array>

using namespace condaguard;
using namespace condaguard::test;

namespace {

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(ossl::drain_errors(std::string("test: ") + what));
}

ossl::Bn bn_word(unsigned long w) {
    ossl::Bn b{BN_new()};
    check(b && BN_set_word(b.get(), w) == 1, "BN_set_word");
    return b;
}

ossl::Bn bn_copy(const BIGNUM* a) {
    ossl::Bn b{BN_dup(a)};
    check(b != nullptr, "BN_dup");
    return b;
}

std::string pem_of_public(EVP_PKEY* k) {
    ossl::Bio bio{BIO_new(BIO_s_mem())};
    check(bio && PEM_write_bio_PUBKEY(bio.get(), k) == 1, "PEM_write_bio_PUBKEY");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// The SPKI PEM of the RSA public key (n, e), whatever n and e are.
std::string rsa_public_pem(const BIGNUM* n, const BIGNUM* e) {
    ossl::ParamBld bld{OSSL_PARAM_BLD_new()};
    check(bld && OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
              OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e) == 1,
          "OSSL_PARAM_BLD_push_BN");
    ossl::Params params{OSSL_PARAM_BLD_to_param(bld.get())};
    check(params != nullptr, "OSSL_PARAM_BLD_to_param");
    ossl::PkeyCtx ctx{EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr)};
    check(ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1, "EVP_PKEY_fromdata_init");
    EVP_PKEY* raw = nullptr;
    check(EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) == 1, "EVP_PKEY_fromdata");
    ossl::Pkey k{raw};
    return pem_of_public(k.get());
}

std::string ed25519_public_pem(const std::array<unsigned char, 32>& point) {
    ossl::Pkey k{EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, point.data(), point.size())};
    check(k != nullptr, "EVP_PKEY_new_raw_public_key");
    return pem_of_public(k.get());
}

// The modulus of a real 2048-bit key: odd, composite, no small factors.
ossl::Bn real_modulus() {
    const std::string pem = cached_key(KeyType::Rsa, 2048).public_key().to_pem();
    ossl::Bio bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
    ossl::Pkey k{PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)};
    check(k != nullptr, "PEM_read_bio_PUBKEY");
    BIGNUM* n = nullptr;
    check(EVP_PKEY_get_bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N, &n) == 1, "EVP_PKEY_get_bn_param");
    return ossl::Bn{n};
}

// Writes KEYS/weak.pub and expects BAD_KEY with `fragment` from the key store
// and from a Verifier run on a signed-looking file.
void expect_bad_key_everywhere(const std::string& pem, const std::string& fragment,
                               const std::vector<unsigned char>& sig = std::vector<unsigned char>(64, 0x5a)) {
    Deadline d(60);
    Keys k;
    k.add("MyKey");
    write_file(k.keys() / "weak.pub", pem);
    KeyStore store(k.keys());
    try {
        store.load_public(KeyName("weak"));
        ADD_FAILURE() << "KeyStore::load_public accepted the key (" << fragment << ")";
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadKey) << e.what();
        EXPECT_NE(std::string(e.what()).find("weak.pub"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    const stdfs::path file = k.dir / "pkg-1.0-0.conda";
    write_file(file, "package bytes");
    write_file(file.string() + ".sig", format_sig_file(KeyName("weak"), sig));
    Verifier v(store);
    const Result r = v.verify_file(file);
    EXPECT_EQ(r.verdict, Verdict::BadKey) << r.reason;
    EXPECT_NE(r.reason.find(fragment), std::string::npos) << r.reason;
}

}  // namespace

TEST(KeySanity, RealKeysPass) {
    const ossl::Bn n = real_modulus();
    const ossl::Bn e = bn_word(65537);
    Keys k;
    k.add("MyKey");
    write_file(k.keys() / "rebuilt.pub", rsa_public_pem(n.get(), e.get()));
    EXPECT_EQ(KeyStore(k.keys()).load_public(KeyName("rebuilt")).fingerprint(),
              cached_key(KeyType::Rsa, 2048).public_key().fingerprint());
    const std::string ed = cached_key(KeyType::Ed25519, 0).public_key().to_pem();
    EXPECT_NO_THROW(PublicKey::from_pem(ed, "ed.pub", KeyPolicy{}));
}

TEST(KeySanity, A18_rsa_exponent_one_is_bad_key) {
    expect_bad_key_everywhere(rsa_public_pem(real_modulus().get(), bn_word(1).get()), "RSA public exponent is 1");
}

TEST(KeySanity, A18_rsa_even_exponent_is_bad_key) {
    for (unsigned long e : {2ul, 65538ul, 0ul})
        expect_bad_key_everywhere(rsa_public_pem(real_modulus().get(), bn_word(e).get()),
                                  "RSA public exponent is even");
}

TEST(KeySanity, A18_rsa_exponent_not_below_modulus_is_bad_key) {
    const ossl::Bn n = real_modulus();
    ossl::Bn e = bn_copy(n.get());
    check(BN_add_word(e.get(), 2) == 1, "BN_add_word");
    expect_bad_key_everywhere(rsa_public_pem(n.get(), e.get()), "exponent is not smaller than the modulus");
}

TEST(KeySanity, A18_rsa_even_modulus_is_bad_key) {
    ossl::Bn n = real_modulus();
    check(BN_add_word(n.get(), 1) == 1, "BN_add_word");
    expect_bad_key_everywhere(rsa_public_pem(n.get(), bn_word(65537).get()), "RSA modulus is even");
}

TEST(KeySanity, A18_rsa_prime_modulus_is_bad_key) {
    Deadline d(120);
    ossl::Bn p{BN_new()};
    ossl::BnCtx ctx{BN_CTX_new()};
    check(p && ctx && BN_generate_prime_ex2(p.get(), 2048, 0, nullptr, nullptr, nullptr, ctx.get()) == 1,
          "BN_generate_prime_ex2");
    expect_bad_key_everywhere(rsa_public_pem(p.get(), bn_word(65537).get()), "RSA modulus is prime");
}

TEST(KeySanity, A18_rsa_modulus_openssl_refuses_is_bad_key) {
    // 3 * n: odd, composite, a 2050-bit modulus with a small factor. Only
    // OpenSSL's public key check (SP 800-56B) names this one.
    ossl::Bn n = real_modulus();
    check(BN_mul_word(n.get(), 3) == 1, "BN_mul_word");
    expect_bad_key_everywhere(rsa_public_pem(n.get(), bn_word(65537).get()),
                              "OpenSSL's RSA public key check refuses it");
}

TEST(KeySanity, A18_rsa_above_max_bits_is_bad_key) {
    // 2^16384 + 1: 16385 bits; no real key needed, the size is checked first.
    ossl::Bn n = bn_word(1);
    check(BN_lshift(n.get(), n.get(), static_cast<int>(max_rsa_bits)) == 1 && BN_add_word(n.get(), 1) == 1,
          "BN_lshift");
    ASSERT_EQ(BN_num_bits(n.get()), 16385);
    expect_bad_key_everywhere(rsa_public_pem(n.get(), bn_word(65537).get()),
                              "RSA key is 16385 bits, above the maximum of 16384");
}

TEST(KeySanity, A18_small_rsa_key_reason_names_min_key_bits) {
    expect_bad_key_everywhere(cached_key(KeyType::Rsa, 1024).public_key().to_pem(),
                              "RSA key is 1024 bits, below the minimum of 2048 (--min-key-bits lowers it)");
}

TEST(KeySanity, A18_ed25519_small_order_points_are_bad_key) {
    // The y-coordinates of the 8 small-order points, and the non-canonical
    // p and p+1, computed here rather than copied from the library's table.
    // Each .sig holds R = identity, S = 0: for the identity key OpenSSL 3.0
    // verifies it on every message, so without the check this is VALID.
    std::vector<unsigned char> forged(64, 0);
    forged[0] = 1;
    ossl::Bn p = bn_word(1);
    check(BN_lshift(p.get(), p.get(), 255) == 1 && BN_sub_word(p.get(), 19) == 1, "p");
    ossl::Bn order8{nullptr};
    {
        BIGNUM* raw = nullptr;
        check(BN_dec2bn(&raw, "2707385501144840649318225287225658788936804267575313519463743609750303402022") > 0,
              "BN_dec2bn");
        order8.reset(raw);
    }
    std::vector<ossl::Bn> ys;
    ys.push_back(bn_word(0));                                  // order 4
    ys.push_back(bn_word(1));                                  // the identity
    ys.push_back(bn_copy(order8.get()));                       // order 8
    ys.push_back(bn_copy(p.get()));                            // p - order8: order 8
    check(BN_sub(ys.back().get(), p.get(), order8.get()) == 1, "BN_sub");
    ys.push_back(bn_copy(p.get()));                            // p - 1: order 2
    check(BN_sub_word(ys.back().get(), 1) == 1, "BN_sub_word");
    ys.push_back(bn_copy(p.get()));                            // p, non-canonical 0
    ys.push_back(bn_copy(p.get()));                            // p + 1, non-canonical 1
    check(BN_add_word(ys.back().get(), 1) == 1, "BN_add_word");
    int checked = 0;
    for (const auto& y : ys) {
        std::array<unsigned char, 32> point{};
        check(BN_bn2lebinpad(y.get(), point.data(), static_cast<int>(point.size())) == 32, "BN_bn2lebinpad");
        for (unsigned char sign : {0x00, 0x80}) {
            point[31] = static_cast<unsigned char>((point[31] & 0x7f) | sign);
            expect_bad_key_everywhere(ed25519_public_pem(point), "small-order point", forged);
            ++checked;
        }
    }
    EXPECT_EQ(checked, 14);
}
