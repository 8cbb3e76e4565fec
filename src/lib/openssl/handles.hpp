// Move-only owners for OpenSSL handles, and OpenSSL errors as exceptions.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace condaguard::ossl {

template <auto Free>
struct Deleter {
    template <class T>
    void operator()(T* p) const noexcept { Free(p); }
};

using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using Md = std::unique_ptr<EVP_MD, Deleter<EVP_MD_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using BnCtx = std::unique_ptr<BN_CTX, Deleter<BN_CTX_free>>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using EncoderCtx = std::unique_ptr<OSSL_ENCODER_CTX, Deleter<OSSL_ENCODER_CTX_free>>;

// Memory OpenSSL allocated for us (PEM_read_bio's name, header and data,
// i2d_*'s output, OSSL_ENCODER_to_data's buffer). OPENSSL_free is a macro, so
// it cannot be a Deleter<> argument. Take ownership right after the call:
//     unsigned char* raw = nullptr;
//     const int n = i2d_PUBKEY(pkey, &raw);
//     ossl::Buffer<unsigned char> buf{raw};
struct OpensslFree {
    void operator()(void* p) const noexcept { OPENSSL_free(p); }
};
template <class T>
using Buffer = std::unique_ptr<T, OpensslFree>;

// Drains OpenSSL's error queue into one line ("what: lib reason; ...").
std::string drain_errors(const std::string& what);

// Throws std::runtime_error with the drained queue.
[[noreturn]] void fail(const std::string& what);

inline void check(int status, const char* what) {
    if (status <= 0) fail(what);
}

template <class T>
T* check_ptr(T* p, const char* what) {
    if (p == nullptr) fail(what);
    return p;
}

// SHA-256 fetched once per process (explicit fetch avoids per-use lookups).
const EVP_MD* sha256();

}  // namespace condaguard::ossl
