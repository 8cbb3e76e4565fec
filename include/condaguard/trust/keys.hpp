// Keys and the keys directory (~/.conda/keys by default).
//
// KEYS/NAME      private key, PEM (RSA: PKCS#1 "RSA PRIVATE KEY"; ed25519: PKCS#8), mode 0600
// KEYS/NAME.pub  public key, PEM SPKI "PUBLIC KEY" (readers also take PKCS#1 "RSA PUBLIC KEY")
//
// The keys directory and each of its ancestors must be owned by the user or
// root and not writable by group or others (sys/secure_dir.hpp); every key
// file is opened with O_NOFOLLOW inside it, must be a regular file owned by the
// user (or root), not writable by group or others, and at most 16 KiB. Private
// keys must not be readable by group or others.
//
// A key is sane before it is trusted (PublicKey::from_pem, which private keys
// go through too): RSA between the policy's minimum and max_rsa_bits, odd
// exponent > 1 and < n, odd composite modulus, and whatever OpenSSL's public
// key check refuses (small factors, prime powers); ed25519 not one of the
// small-order points, for which anyone can forge signatures.
#pragma once

#include <condaguard/trust/digest.hpp>
#include <condaguard/trust/key_name.hpp>

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace condaguard {

enum class KeyType { Rsa, Ed25519 };

std::string_view to_string(KeyType t) noexcept;

inline constexpr std::size_t max_key_file_bytes = 16 * 1024;
// The floor for new signatures and new keys, whatever the KeyPolicy says;
// a policy may lower it only to accept old keys for verifying.
inline constexpr unsigned default_min_rsa_bits = 2048;
// Larger RSA keys are BAD_KEY: nobody needs them and checking them is slow.
inline constexpr unsigned max_rsa_bits = 16384;
inline constexpr unsigned default_rsa_bits = 2048;
inline constexpr std::size_t rsa_pss_salt_bytes = 32;

struct KeyPolicy {
    // RSA keys with fewer bits are BAD_KEY (for reading; signing always needs
    // default_min_rsa_bits).
    unsigned min_rsa_bits = default_min_rsa_bits;
};

namespace detail {
struct PkeyHandle;
}

class PublicKey {
public:
    // Parses PEM text; throws VerdictError(BadKey) naming `origin` on any fault.
    static PublicKey from_pem(std::string_view pem, const std::string& origin, const KeyPolicy& policy);

    PublicKey(PublicKey&&) noexcept;
    PublicKey& operator=(PublicKey&&) noexcept;
    ~PublicKey();

    KeyType type() const noexcept { return type_; }
    unsigned bits() const noexcept { return bits_; }
    // SHA-256 of the SPKI DER, lowercase hex.
    const std::string& fingerprint() const noexcept { return fingerprint_; }
    // Signature length in bytes (RSA: modulus bytes; ed25519: 64).
    std::size_t signature_size() const noexcept;
    std::string to_pem() const;  // SPKI "PUBLIC KEY"

    // RSA: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt exactly 32, length == modulus bytes.
    // ed25519: Ed25519 over the 32 digest bytes.
    bool verify_digest(const Sha256Digest& digest, std::span<const unsigned char> signature) const;

private:
    friend class PrivateKey;
    explicit PublicKey(std::unique_ptr<detail::PkeyHandle> h);
    std::unique_ptr<detail::PkeyHandle> pkey_;
    KeyType type_ = KeyType::Rsa;
    unsigned bits_ = 0;
    std::string fingerprint_;
};

class PrivateKey {
public:
    // Throws VerdictError(BadKey) naming `origin` on any fault.
    static PrivateKey from_pem(std::string_view pem, const std::string& origin, const KeyPolicy& policy);
    // Throws std::invalid_argument for RSA sizes outside
    // [default_min_rsa_bits, max_rsa_bits].
    static PrivateKey generate(KeyType type, unsigned rsa_bits);

    PrivateKey(PrivateKey&&) noexcept;
    PrivateKey& operator=(PrivateKey&&) noexcept;
    ~PrivateKey();

    KeyType type() const noexcept { return public_.type(); }
    const PublicKey& public_key() const noexcept { return public_; }
    std::string to_pem() const;  // RSA: PKCS#1 "RSA PRIVATE KEY"; ed25519: PKCS#8 "PRIVATE KEY"

    // Throws VerdictError(BadKey) when this key may not make new signatures:
    // RSA under default_min_rsa_bits (a lowered --min-key-bits admits such
    // keys for verifying old signatures only). `origin` names the key.
    void check_can_sign(const std::string& origin) const;

    // Calls check_can_sign first.
    std::vector<unsigned char> sign_digest(const Sha256Digest& digest) const;

private:
    PrivateKey(std::unique_ptr<detail::PkeyHandle> h, PublicKey pub);
    static PrivateKey from_handle(std::unique_ptr<detail::PkeyHandle> h, const std::string& origin,
                                  const KeyPolicy& policy);
    std::unique_ptr<detail::PkeyHandle> pkey_;
    PublicKey public_;
};

struct KeyPairPaths {
    std::filesystem::path private_key;
    std::filesystem::path public_key;
};

class KeyStore {
public:
    explicit KeyStore(std::filesystem::path dir, KeyPolicy policy = {});

    const std::filesystem::path& dir() const noexcept { return dir_; }
    const KeyPolicy& policy() const noexcept { return policy_; }

    // KEYS/NAME.pub. Throws VerdictError: MissingKey when absent, BadKey when unusable.
    PublicKey load_public(const KeyName& name) const;
    // KEYS/NAME. Throws VerdictError: MissingKey when absent, BadKey when unusable.
    PrivateKey load_private(const KeyName& name) const;

    // The listings return nothing when the keys directory does not exist and
    // throw VerdictError(BadKey) when it is unsafe.
    // Names of private keys (regular files not ending in .pub, valid names), sorted.
    std::vector<std::string> private_key_names() const;
    // Names with a NAME.pub, sorted.
    std::vector<std::string> public_key_names() const;

    // Whether store(name, ..., overwrite) may write: throws
    // std::invalid_argument for a NAME ending in ".pub" (its public key would
    // be NAME.pub.pub, and NAME.pub is the public key of NAME), and
    // std::runtime_error when either file exists and !overwrite; VerdictError
    // (BadKey) when the keys directory is unsafe. Creates nothing.
    void check_can_store(const KeyName& name, bool overwrite) const;

    // Writes KEYS/NAME (exclusively, 0600) and KEYS/NAME.pub, creating KEYS as
    // 0700 (and missing ancestors as 0755). Checks as check_can_store first.
    KeyPairPaths store(const KeyName& name, const PrivateKey& key, bool overwrite) const;

    // What remove() did: the files it removed, and whether a private key was
    // left in place (remove_private was false and NAME exists).
    struct Removal {
        std::vector<std::filesystem::path> removed;
        bool private_key_left = false;
    };
    // Removes KEYS/NAME.pub, and KEYS/NAME too with `remove_private`, through
    // the checked keys directory (unlinkat; links are removed, never followed).
    // Removing nothing is not an error here: the caller decides what to say.
    Removal remove(const KeyName& name, bool remove_private) const;

private:
    std::filesystem::path dir_;
    KeyPolicy policy_;
};

// Reads a private key file given by path (for -i PATH and --import-key):
// O_NOFOLLOW, regular, at most 16 KiB, not readable by group/others.
PrivateKey load_private_key_file(const std::filesystem::path& path, const KeyPolicy& policy);

}  // namespace condaguard
