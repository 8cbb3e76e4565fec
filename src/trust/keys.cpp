#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include <lib/openssl/handles.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/secure_dir.hpp>

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <dirent.h>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard {

namespace detail {
struct PkeyHandle {
    ossl::Pkey pkey;
};
}  // namespace detail

std::string_view to_string(KeyType t) noexcept { return t == KeyType::Rsa ? "rsa" : "ed25519"; }

namespace {

constexpr std::string_view pub_suffix = ".pub";

VerdictError bad_key(const std::string& origin, const std::string& why) {
    ERR_clear_error();
    return VerdictError(Verdict::BadKey, origin + ": " + why);
}

// One PEM block: its label and DER body.
struct PemBlock {
    std::string label;
    std::vector<unsigned char> der;
};

// One PEM_read_bio call; every buffer it allocates is owned at once.
struct PemRead {
    ossl::Buffer<char> name, header;
    ossl::Buffer<unsigned char> data;
    long len = 0;
};

std::optional<PemRead> read_pem(BIO* bio) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    const int rc = PEM_read_bio(bio, &name, &header, &data, &len);
    PemRead out{ossl::Buffer<char>{name}, ossl::Buffer<char>{header}, ossl::Buffer<unsigned char>{data}, len};
    if (rc != 1) return std::nullopt;
    return out;
}

PemBlock read_single_pem(std::string_view text, const std::string& origin, const char* what) {
    ossl::Bio bio{ossl::check_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), "BIO_new_mem_buf")};
    const auto first = read_pem(bio.get());
    if (!first || first->len < 0)
        throw bad_key(origin, fmt::format("not a PEM {} (empty, cut short or not PEM)", what));
    const unsigned char* der = first->data.get();
    PemBlock block{first->name.get(), std::vector<unsigned char>(der, der + first->len)};
    if (first->header && first->header.get()[0] != '\0')
        throw bad_key(origin, "PEM block has headers (encrypted keys are not supported)");
    const bool second = read_pem(bio.get()).has_value();
    ERR_clear_error();
    if (second) throw bad_key(origin, "file holds more than one PEM block");
    return block;
}

// d2i helpers that insist the whole DER body is consumed.
template <class F>
ossl::Pkey decode_all(const std::vector<unsigned char>& der, F decode) {
    const unsigned char* p = der.data();
    ossl::Pkey k{decode(&p, static_cast<long>(der.size()))};
    if (k && p != der.data() + der.size()) k.reset();
    ERR_clear_error();
    return k;
}

std::string spki_der(EVP_PKEY* pkey) {
    unsigned char* raw = nullptr;
    const int n = i2d_PUBKEY(pkey, &raw);
    const ossl::Buffer<unsigned char> buf{raw};
    if (n <= 0) ossl::fail("i2d_PUBKEY");
    return std::string(reinterpret_cast<const char*>(buf.get()), static_cast<std::size_t>(n));
}

std::string encode_pem(EVP_PKEY* pkey, int selection, const char* structure) {
    ossl::EncoderCtx ctx{OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, "PEM", structure, nullptr)};
    if (!ctx || OSSL_ENCODER_CTX_get_num_encoders(ctx.get()) == 0)
        ossl::fail(fmt::format("no PEM encoder for {}", structure));
    unsigned char* raw = nullptr;
    size_t len = 0;
    const int rc = OSSL_ENCODER_to_data(ctx.get(), &raw, &len);
    const ossl::Buffer<unsigned char> data{raw};
    ossl::check(rc, "OSSL_ENCODER_to_data");
    return std::string(reinterpret_cast<const char*>(data.get()), len);
}

ossl::PkeyCtx pkey_ctx(EVP_PKEY* pkey) {
    return ossl::PkeyCtx{ossl::check_ptr(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr), "EVP_PKEY_CTX_new")};
}

// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, as the old tool.
void set_pss_params(EVP_PKEY_CTX* ctx) {
    ossl::check(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), "set PSS padding");
    ossl::check(EVP_PKEY_CTX_set_signature_md(ctx, ossl::sha256()), "set signature digest");
    ossl::check(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, ossl::sha256()), "set MGF1 digest");
    ossl::check(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, static_cast<int>(rsa_pss_salt_bytes)), "set PSS salt length");
}

// The small-order points of edwards25519, as 32-byte encodings of y with the
// sign bit of x (bit 255) masked off: y = 0 (two points of order 4), 1 (the
// identity), the two y of the four points of order 8, p-1 (order 2), and the
// non-canonical p (= 0) and p+1 (= 1). With the sign bit, these are the 8
// small-order points and their non-canonical encodings. The list is
// libsodium's (ge25519_has_small_order in crypto_core/ed25519/ref10), which
// follows "Taming the many EdDSAs" (Chalkias et al., 2020); we checked that
// each decodable entry times 8 is the identity. A public key of small order
// verifies forged signatures: with A = identity, R = identity and S = 0
// verify every message.
constexpr std::size_t ed25519_key_bytes = 32;
constexpr std::array<std::array<unsigned char, ed25519_key_bytes>, 7> ed25519_small_order_y = {{
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
    {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
}};

bool is_small_order_ed25519(const std::array<unsigned char, ed25519_key_bytes>& key) {
    for (const auto& y : ed25519_small_order_y) {
        unsigned char diff = (key[31] & 0x7f) ^ y[31];
        for (std::size_t i = 0; i < 31; ++i) diff |= key[i] ^ y[i];
        if (diff == 0) return true;
    }
    return false;
}

// The reason OpenSSL gives for the last error, or `fallback`.
std::string openssl_reason(const char* fallback) {
    const unsigned long e = ERR_peek_last_error();
    const char* r = e != 0 ? ERR_reason_error_string(e) : nullptr;
    return r != nullptr ? r : fallback;
}

ossl::Bn rsa_param(EVP_PKEY* k, const char* name) {
    BIGNUM* bn = nullptr;
    ossl::check(EVP_PKEY_get_bn_param(k, name, &bn), "EVP_PKEY_get_bn_param");
    return ossl::Bn{bn};
}

// Size first (cheap, and bounds the work below), then the faults that have a
// name of their own, then OpenSSL's SP 800-56B public check for the rest.
void check_rsa_key(EVP_PKEY* k, unsigned bits, const std::string& origin, const KeyPolicy& policy) {
    if (bits > max_rsa_bits)
        throw bad_key(origin, fmt::format("RSA key is {} bits, above the maximum of {}", bits, max_rsa_bits));
    if (bits < policy.min_rsa_bits)
        throw bad_key(origin, fmt::format("RSA key is {} bits, below the minimum of {} (--min-key-bits lowers it)",
                                          bits, policy.min_rsa_bits));
    const ossl::Bn n = rsa_param(k, OSSL_PKEY_PARAM_RSA_N);
    const ossl::Bn e = rsa_param(k, OSSL_PKEY_PARAM_RSA_E);
    if (BN_is_negative(n.get()) || BN_is_negative(e.get()))
        throw bad_key(origin, "RSA modulus or exponent is negative");
    if (BN_is_one(e.get()))
        throw bad_key(origin, "RSA public exponent is 1 (anyone can forge: a signature is its own message)");
    if (!BN_is_odd(e.get())) throw bad_key(origin, "RSA public exponent is even (RSA needs an odd exponent)");
    if (BN_cmp(e.get(), n.get()) >= 0) throw bad_key(origin, "RSA public exponent is not smaller than the modulus");
    if (!BN_is_odd(n.get())) throw bad_key(origin, "RSA modulus is even (it has the factor 2)");
    const ossl::BnCtx ctx{ossl::check_ptr(BN_CTX_new(), "BN_CTX_new")};
    const int prime = BN_check_prime(n.get(), ctx.get(), nullptr);
    if (prime < 0) ossl::fail("BN_check_prime");
    if (prime == 1) throw bad_key(origin, "RSA modulus is prime (anyone can compute the private key)");
    auto pctx = pkey_ctx(k);
    if (EVP_PKEY_public_check(pctx.get()) != 1)
        throw bad_key(origin, "OpenSSL's RSA public key check refuses it: " + openssl_reason("no reason given"));
}

void check_ed25519_key(EVP_PKEY* k, const std::string& origin) {
    std::array<unsigned char, ed25519_key_bytes> raw{};
    size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(k, raw.data(), &len) != 1 || len != raw.size())
        throw bad_key(origin, "ed25519 public key is not 32 bytes");
    if (is_small_order_ed25519(raw))
        throw bad_key(origin, "ed25519 public key is a small-order point (anyone can forge signatures for it)");
    auto pctx = pkey_ctx(k);
    if (EVP_PKEY_public_check(pctx.get()) != 1)
        throw bad_key(origin, "OpenSSL's ed25519 public key check refuses it: " + openssl_reason("no reason given"));
}

// Key files: opened without following links, regular, owned by us or root,
// not writable by others; private keys not readable by others either.
std::string read_key_file(const fs::Fd& at, const std::filesystem::path& path, bool is_private) {
    const std::string origin = path.string();
    fs::OpenedFile f;
    try {
        f = at ? fs::open_untrusted_at(at.get(), path.filename().string(), path) : fs::open_untrusted(path);
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing) throw VerdictError(Verdict::MissingKey, origin + ": no such key file");
        throw bad_key(origin, std::string("key file ") + e.what());
    }
    const fs::Fd& fd = f.fd;
    const struct stat& st = f.st;
    if (auto why = fs::foreign_owner(st)) throw bad_key(origin, *why);
    if (auto why = fs::writable_by_others(st)) throw bad_key(origin, *why);
    if (is_private && (st.st_mode & (S_IRGRP | S_IROTH)))
        throw bad_key(origin, fmt::format("private key is readable by group or others (mode {:04o}); "
                                          "run chmod 600 on it", st.st_mode & 07777));
    auto r = fs::read_capped(fd.get(), max_key_file_bytes, origin);
    if (r.too_big) throw bad_key(origin, fmt::format("key file is larger than {} bytes", max_key_file_bytes));
    return std::move(r.data);
}

// The keys directory, checked with each ancestor (sys/secure_dir.hpp). A
// missing one is MISSING_KEY; an unsafe one BAD_KEY naming the offending
// directory (the keys directory or one of its ancestors).
fs::Fd open_keys_dir(const std::filesystem::path& dir, fs::CreateMissing create = fs::CreateMissing::No) {
    try {
        return fs::open_secure_dir(dir, create);
    } catch (const fs::UnsafeDirectory& e) {
        if (e.fault().kind == fs::DirFaultKind::Missing)
            throw VerdictError(Verdict::MissingKey, dir.string() + ": keys directory does not exist");
        // Name the offending directory once: the keys directory, or it and its unsafe ancestor.
        if (e.fault().path == dir) throw VerdictError(Verdict::BadKey, "keys directory " + e.fault().why);
        throw VerdictError(Verdict::BadKey, fmt::format("keys directory {} is not safe: {}", dir.string(), e.what()));
    }
}

}  // namespace

// ---------------------------------------------------------------- PublicKey

PublicKey::PublicKey(std::unique_ptr<detail::PkeyHandle> h) : pkey_(std::move(h)) {
    EVP_PKEY* k = pkey_->pkey.get();
    if (EVP_PKEY_is_a(k, "RSA")) {
        type_ = KeyType::Rsa;
    } else if (EVP_PKEY_is_a(k, "ED25519")) {
        type_ = KeyType::Ed25519;
    } else {
        throw std::invalid_argument(fmt::format("unsupported key type {} (RSA or ed25519 only)",
                                                EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "?"));
    }
    bits_ = static_cast<unsigned>(EVP_PKEY_get_bits(k));
    const std::string der = spki_der(k);
    Sha256 h2;
    h2.update({reinterpret_cast<const unsigned char*>(der.data()), der.size()});
    fingerprint_ = to_hex(h2.finish());
}

PublicKey::PublicKey(PublicKey&&) noexcept = default;
PublicKey& PublicKey::operator=(PublicKey&&) noexcept = default;
PublicKey::~PublicKey() = default;

PublicKey PublicKey::from_pem(std::string_view pem, const std::string& origin, const KeyPolicy& policy) {
    if (pem.find("PRIVATE KEY") != pem.npos)
        throw bad_key(origin, "public key file holds private key material");
    PemBlock block = read_single_pem(pem, origin, "public key");
    ossl::Pkey k;
    if (block.label == "PUBLIC KEY") {
        k = decode_all(block.der, [](const unsigned char** p, long n) { return d2i_PUBKEY(nullptr, p, n); });
    } else if (block.label == "RSA PUBLIC KEY") {
        k = decode_all(block.der,
                       [](const unsigned char** p, long n) { return d2i_PublicKey(EVP_PKEY_RSA, nullptr, p, n); });
        if (!k) {  // the SPKI body under the PKCS#1 header, as some tools write it
            k = decode_all(block.der, [](const unsigned char** p, long n) { return d2i_PUBKEY(nullptr, p, n); });
            if (k && !EVP_PKEY_is_a(k.get(), "RSA")) k.reset();
        }
    } else {
        throw bad_key(origin, fmt::format("PEM label '{}' is not a public key", block.label));
    }
    if (!k) throw bad_key(origin, fmt::format("'{}' PEM body is not a valid key", block.label));
    std::optional<PublicKey> key;
    try {
        key.emplace(PublicKey(std::make_unique<detail::PkeyHandle>(detail::PkeyHandle{std::move(k)})));
    } catch (const std::invalid_argument& e) {
        throw bad_key(origin, e.what());
    }
    EVP_PKEY* raw = key->pkey_->pkey.get();
    if (key->type() == KeyType::Rsa)
        check_rsa_key(raw, key->bits(), origin, policy);
    else
        check_ed25519_key(raw, origin);
    return std::move(*key);
}

std::size_t PublicKey::signature_size() const noexcept {
    return type_ == KeyType::Ed25519 ? 64 : static_cast<std::size_t>(EVP_PKEY_get_size(pkey_->pkey.get()));
}

std::string PublicKey::to_pem() const {
    return encode_pem(pkey_->pkey.get(), EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
}

bool PublicKey::verify_digest(const Sha256Digest& digest, std::span<const unsigned char> signature) const {
    if (signature.size() != signature_size()) return false;
    EVP_PKEY* k = pkey_->pkey.get();
    int rc;
    if (type_ == KeyType::Ed25519) {
        ossl::MdCtx md{ossl::check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new")};
        ossl::check(EVP_DigestVerifyInit_ex(md.get(), nullptr, nullptr, nullptr, nullptr, k, nullptr),
                    "EVP_DigestVerifyInit_ex");
        rc = EVP_DigestVerify(md.get(), signature.data(), signature.size(), digest.data(), digest.size());
    } else {
        auto ctx = pkey_ctx(k);
        ossl::check(EVP_PKEY_verify_init(ctx.get()), "EVP_PKEY_verify_init");
        set_pss_params(ctx.get());
        rc = EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(), digest.size());
    }
    ERR_clear_error();
    // 1 is the only success; 0 and negative values (malformed, s >= n, ...) fail.
    return rc == 1;
}

// --------------------------------------------------------------- PrivateKey

PrivateKey::PrivateKey(std::unique_ptr<detail::PkeyHandle> h, PublicKey pub)
    : pkey_(std::move(h)), public_(std::move(pub)) {}
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;

PrivateKey PrivateKey::from_pem(std::string_view pem, const std::string& origin, const KeyPolicy& policy) {
    PemBlock block = read_single_pem(pem, origin, "private key");
    ossl::Pkey k;
    if (block.label == "RSA PRIVATE KEY") {
        k = decode_all(block.der, [](const unsigned char** p, long n) {
            return d2i_PrivateKey(EVP_PKEY_RSA, nullptr, p, n);
        });
    } else if (block.label == "PRIVATE KEY") {
        k = decode_all(block.der, [](const unsigned char** p, long n) { return d2i_AutoPrivateKey(nullptr, p, n); });
    } else if (block.label == "ENCRYPTED PRIVATE KEY") {
        throw bad_key(origin, "encrypted private keys are not supported");
    } else {
        throw bad_key(origin, fmt::format("PEM label '{}' is not a private key", block.label));
    }
    if (!k) throw bad_key(origin, fmt::format("'{}' PEM body is not a valid key", block.label));
    return from_handle(std::make_unique<detail::PkeyHandle>(detail::PkeyHandle{std::move(k)}), origin, policy);
}

PrivateKey PrivateKey::from_handle(std::unique_ptr<detail::PkeyHandle> h, const std::string& origin,
                                   const KeyPolicy& policy) {
    const std::string der = spki_der(h->pkey.get());
    const std::string pub_pem = [&] {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
        ossl::Pkey pub{d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()))};
        if (!pub) ossl::fail("d2i_PUBKEY");
        return encode_pem(pub.get(), EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    }();
    PublicKey pub = PublicKey::from_pem(pub_pem, origin, policy);
    return PrivateKey(std::move(h), std::move(pub));
}

PrivateKey PrivateKey::generate(KeyType type, unsigned rsa_bits) {
    if (type == KeyType::Rsa && (rsa_bits < default_min_rsa_bits || rsa_bits > max_rsa_bits))
        throw std::invalid_argument(fmt::format("RSA keys of {} bits are not made: the size must be {} to {}",
                                                rsa_bits, default_min_rsa_bits, max_rsa_bits));
    ossl::Pkey k;
    if (type == KeyType::Rsa) {
        k.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits)));
    } else {
        k.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    }
    if (!k) ossl::fail("key generation");
    return from_handle(std::make_unique<detail::PkeyHandle>(detail::PkeyHandle{std::move(k)}), "generated key",
                       KeyPolicy{.min_rsa_bits = rsa_bits});
}

std::string PrivateKey::to_pem() const {
    // RSA: "type-specific" is PKCS#1 RSAPrivateKey ("RSA PRIVATE KEY"), as the old tool wrote.
    return encode_pem(pkey_->pkey.get(), EVP_PKEY_KEYPAIR,
                      type() == KeyType::Rsa ? "type-specific" : "PrivateKeyInfo");
}

void PrivateKey::check_can_sign(const std::string& origin) const {
    if (type() == KeyType::Rsa && public_.bits() < default_min_rsa_bits)
        throw bad_key(origin, fmt::format("RSA key is {} bits; new signatures need at least {} "
                                          "(--min-key-bits admits smaller keys only to verify old signatures)",
                                          public_.bits(), default_min_rsa_bits));
}

std::vector<unsigned char> PrivateKey::sign_digest(const Sha256Digest& digest) const {
    check_can_sign("signing key");
    EVP_PKEY* k = pkey_->pkey.get();
    std::vector<unsigned char> sig(public_.signature_size());
    size_t len = sig.size();
    if (type() == KeyType::Ed25519) {
        ossl::MdCtx md{ossl::check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new")};
        ossl::check(EVP_DigestSignInit_ex(md.get(), nullptr, nullptr, nullptr, nullptr, k, nullptr),
                    "EVP_DigestSignInit_ex");
        ossl::check(EVP_DigestSign(md.get(), sig.data(), &len, digest.data(), digest.size()), "EVP_DigestSign");
    } else {
        auto ctx = pkey_ctx(k);
        ossl::check(EVP_PKEY_sign_init(ctx.get()), "EVP_PKEY_sign_init");
        set_pss_params(ctx.get());
        ossl::check(EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()), "EVP_PKEY_sign");
    }
    if (len != sig.size()) throw std::logic_error("signature has an unexpected length");
    return sig;
}

// ----------------------------------------------------------------- KeyStore

KeyStore::KeyStore(std::filesystem::path dir, KeyPolicy policy) : dir_(std::move(dir)), policy_(policy) {}

PublicKey KeyStore::load_public(const KeyName& name) const {
    fs::Fd dirfd = open_keys_dir(dir_);
    const auto path = dir_ / (name.str() + std::string(pub_suffix));
    return PublicKey::from_pem(read_key_file(dirfd, path, false), path.string(), policy_);
}

PrivateKey KeyStore::load_private(const KeyName& name) const {
    fs::Fd dirfd = open_keys_dir(dir_);
    const auto path = dir_ / name.str();
    return PrivateKey::from_pem(read_key_file(dirfd, path, true), path.string(), policy_);
}

PrivateKey load_private_key_file(const std::filesystem::path& path, const KeyPolicy& policy) {
    return PrivateKey::from_pem(read_key_file(fs::Fd{}, path, true), path.string(), policy);
}

namespace {

// Reads the keys directory through the descriptor the safety walk opened.
std::vector<std::string> list_names(const std::filesystem::path& dir, bool want_pub) {
    fs::Fd dirfd;
    try {
        dirfd = open_keys_dir(dir);
    } catch (const VerdictError& e) {
        if (e.verdict() == Verdict::MissingKey) return {};
        throw;
    }
    // fdopendir owns the descriptor it is given: hand it a duplicate.
    const int dup = ::fcntl(dirfd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) throw fs::errno_error("dup " + dir.string());
    using Dir = std::unique_ptr<DIR, decltype([](DIR* d) noexcept { ::closedir(d); })>;
    Dir d{::fdopendir(dup)};
    if (!d) {
        const auto err = fs::errno_error("opendir " + dir.string());
        ::close(dup);
        throw err;
    }
    std::vector<std::string> out;
    for (;;) {
        errno = 0;
        const dirent* e = ::readdir(d.get());
        if (e == nullptr) {
            if (errno != 0) throw fs::errno_error("readdir " + dir.string());
            break;
        }
        std::string fn = e->d_name;
        const bool is_pub = fn.size() > pub_suffix.size() && fn.ends_with(pub_suffix);
        if (is_pub != want_pub) continue;
        if (is_pub) fn.resize(fn.size() - pub_suffix.size());
        if (KeyName::problem(fn)) continue;
        struct stat st {};
        if (::fstatat(dirfd.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        out.push_back(std::move(fn));
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool exists_at(int dirfd, const std::string& name) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
    if (errno != ENOENT) throw fs::errno_error("stat " + name);
    return false;
}

void check_store_name(const KeyName& name) {
    if (name.str().ends_with(pub_suffix))
        throw std::invalid_argument(fmt::format("key name '{}' ends in '{}': its public key would be {}{} and {} is "
                                                "the public key file of key '{}'; choose another name",
                                                name.str(), pub_suffix, name.str(), pub_suffix, name.str(),
                                                name.str().substr(0, name.str().size() - pub_suffix.size())));
}

void check_not_present(int dirfd, const KeyPairPaths& paths) {
    for (const auto& p : {paths.private_key, paths.public_key}) {
        if (exists_at(dirfd, p.filename().string()))
            throw std::runtime_error(p.string() + " already exists (use --force to replace the key pair)");
    }
}

KeyPairPaths pair_paths(const std::filesystem::path& dir, const KeyName& name) {
    return KeyPairPaths{.private_key = dir / name.str(), .public_key = dir / (name.str() + std::string(pub_suffix))};
}
}  // namespace

std::vector<std::string> KeyStore::private_key_names() const { return list_names(dir_, false); }
std::vector<std::string> KeyStore::public_key_names() const { return list_names(dir_, true); }

void KeyStore::check_can_store(const KeyName& name, bool overwrite) const {
    check_store_name(name);
    if (overwrite) return;
    fs::Fd dirfd;
    try {
        dirfd = open_keys_dir(dir_);
    } catch (const VerdictError& e) {
        if (e.verdict() == Verdict::MissingKey) return;  // store() creates it
        throw;
    }
    check_not_present(dirfd.get(), pair_paths(dir_, name));
}

KeyPairPaths KeyStore::store(const KeyName& name, const PrivateKey& key, bool overwrite) const {
    check_store_name(name);
    const fs::Fd dirfd = open_keys_dir(dir_, fs::CreateMissing::Yes);
    const KeyPairPaths paths = pair_paths(dir_, name);
    if (!overwrite) check_not_present(dirfd.get(), paths);
    // Written inside the checked directory: a link planted at either name is
    // replaced (or, exclusive, refused), never followed.
    fs::write_atomic_at(dirfd.get(), paths.private_key.filename().string(), key.to_pem(), 0600, !overwrite,
                        paths.private_key);
    fs::write_atomic_at(dirfd.get(), paths.public_key.filename().string(), key.public_key().to_pem(), 0644,
                        !overwrite, paths.public_key);
    return paths;
}

KeyStore::Removal KeyStore::remove(const KeyName& name, bool remove_private) const {
    const fs::Fd dirfd = open_keys_dir(dir_);
    const KeyPairPaths paths = pair_paths(dir_, name);
    Removal out;
    auto unlink = [&](const std::filesystem::path& p) {
        if (::unlinkat(dirfd.get(), p.filename().c_str(), 0) == 0) {
            out.removed.push_back(p);
        } else if (errno != ENOENT) {
            throw fs::errno_error(p.string());
        }
    };
    unlink(paths.public_key);
    if (remove_private) {
        unlink(paths.private_key);
    } else {
        struct stat st {};
        out.private_key_left = ::fstatat(dirfd.get(), paths.private_key.filename().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    }
    return out;
}

}  // namespace condaguard
