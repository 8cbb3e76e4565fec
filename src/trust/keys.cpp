#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include <lib/openssl/handles.hpp>
#include <condaguard/sys/fs.hpp>

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
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

VerdictError bad_key(const std::string& origin, const std::string& why) {
    ERR_clear_error();
    return VerdictError(Verdict::BadKey, origin + ": " + why);
}

// One PEM block: its label and DER body.
struct PemBlock {
    std::string label;
    std::vector<unsigned char> der;
};

PemBlock read_single_pem(std::string_view text, const std::string& origin, const char* what) {
    ossl::Bio bio{ossl::check_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), "BIO_new_mem_buf")};
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1)
        throw bad_key(origin, fmt::format("not a PEM {} (empty, cut short or not PEM)", what));
    PemBlock block{name, std::vector<unsigned char>(data, data + len)};
    const bool has_header = header != nullptr && header[0] != '\0';
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (has_header) throw bad_key(origin, "PEM block has headers (encrypted keys are not supported)");
    char* name2 = nullptr;
    char* header2 = nullptr;
    unsigned char* data2 = nullptr;
    long len2 = 0;
    const bool second = PEM_read_bio(bio.get(), &name2, &header2, &data2, &len2) == 1;
    OPENSSL_free(name2);
    OPENSSL_free(header2);
    OPENSSL_free(data2);
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
    unsigned char* buf = nullptr;
    int n = i2d_PUBKEY(pkey, &buf);
    if (n <= 0) ossl::fail("i2d_PUBKEY");
    std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    OPENSSL_free(buf);
    return out;
}

std::string encode_pem(EVP_PKEY* pkey, int selection, const char* structure) {
    using EncoderCtx = std::unique_ptr<OSSL_ENCODER_CTX, ossl::Deleter<OSSL_ENCODER_CTX_free>>;
    EncoderCtx ctx{OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, "PEM", structure, nullptr)};
    if (!ctx || OSSL_ENCODER_CTX_get_num_encoders(ctx.get()) == 0)
        ossl::fail(fmt::format("no PEM encoder for {}", structure));
    unsigned char* data = nullptr;
    size_t len = 0;
    ossl::check(OSSL_ENCODER_to_data(ctx.get(), &data, &len), "OSSL_ENCODER_to_data");
    std::string out(reinterpret_cast<char*>(data), len);
    OPENSSL_free(data);
    return out;
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
    if (st.st_uid != ::geteuid() && st.st_uid != 0)
        throw bad_key(origin, fmt::format("owned by uid {}, not by you or root", st.st_uid));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        throw bad_key(origin, fmt::format("writable by group or others (mode {:04o})", st.st_mode & 07777));
    if (is_private && (st.st_mode & (S_IRGRP | S_IROTH)))
        throw bad_key(origin, fmt::format("private key is readable by group or others (mode {:04o}); "
                                          "run chmod 600 on it", st.st_mode & 07777));
    auto r = fs::read_capped(fd.get(), max_key_file_bytes, origin);
    if (r.too_big) throw bad_key(origin, fmt::format("key file is larger than {} bytes", max_key_file_bytes));
    return std::move(r.data);
}

void check_dir_safe(const std::filesystem::path& dir, const struct stat& st) {
    if (!S_ISDIR(st.st_mode)) throw bad_key(dir.string(), "keys directory is not a directory");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        throw bad_key(dir.string(), fmt::format("keys directory is writable by group or others (mode {:04o})",
                                                st.st_mode & 07777));
    if (st.st_uid != ::geteuid() && st.st_uid != 0)
        throw bad_key(dir.string(), fmt::format("keys directory is owned by uid {}, not by you or root", st.st_uid));
}

fs::Fd open_keys_dir(const std::filesystem::path& dir) {
    fs::Fd fd = fs::open_raw(dir, O_RDONLY | O_DIRECTORY);
    if (!fd) {
        if (errno == ENOENT) throw VerdictError(Verdict::MissingKey, dir.string() + ": keys directory does not exist");
        if (errno == ENOTDIR) throw bad_key(dir.string(), "keys directory is not a directory");
        throw fs::errno_error(dir.string());
    }
    check_dir_safe(dir, fs::fstat_or_throw(fd.get(), dir.string()));
    return fd;
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
    if (key->type() == KeyType::Rsa && key->bits() < policy.min_rsa_bits)
        throw bad_key(origin, fmt::format("RSA key is {} bits, below the minimum of {}", key->bits(),
                                          policy.min_rsa_bits));
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

std::vector<unsigned char> PrivateKey::sign_digest(const Sha256Digest& digest) const {
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
    const auto path = dir_ / (name.str() + ".pub");
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
std::vector<std::string> list_names(const std::filesystem::path& dir, bool want_pub) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        std::string fn = e.path().filename().string();
        const bool is_pub = fn.size() > 4 && fn.ends_with(".pub");
        if (is_pub != want_pub) continue;
        if (is_pub) fn.resize(fn.size() - 4);
        if (KeyName::problem(fn)) continue;
        if (!e.is_regular_file(ec) || e.is_symlink(ec)) continue;
        out.push_back(std::move(fn));
    }
    if (ec && ec != std::errc::no_such_file_or_directory) throw std::system_error(ec, dir.string());
    std::sort(out.begin(), out.end());
    return out;
}
}  // namespace

std::vector<std::string> KeyStore::private_key_names() const { return list_names(dir_, false); }
std::vector<std::string> KeyStore::public_key_names() const { return list_names(dir_, true); }

KeyPairPaths KeyStore::store(const KeyName& name, const PrivateKey& key, bool overwrite) const {
    std::error_code ec;
    if (!dir_.parent_path().empty()) std::filesystem::create_directories(dir_.parent_path(), ec);
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) throw fs::errno_error("mkdir " + dir_.string());
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0) throw fs::errno_error(dir_.string());
    check_dir_safe(dir_, st);

    KeyPairPaths paths{dir_ / name.str(), dir_ / (name.str() + ".pub")};
    if (!overwrite) {
        for (const auto& p : {paths.private_key, paths.public_key}) {
            if (std::filesystem::symlink_status(p, ec).type() != std::filesystem::file_type::not_found)
                throw std::runtime_error(p.string() + " already exists (use --force to replace the key pair)");
        }
    }
    fs::write_atomic(paths.private_key, key.to_pem(), 0600, !overwrite);
    fs::write_atomic(paths.public_key, key.public_key().to_pem(), 0644, !overwrite);
    return paths;
}

}  // namespace condaguard
