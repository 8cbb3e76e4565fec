#include <condaguard/trust/digest.hpp>

#include <lib/openssl/handles.hpp>
#include <condaguard/sys/fs.hpp>

#include <cerrno>
#include <unistd.h>

namespace condaguard {

std::string to_hex(std::span<const unsigned char> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xf]);
    }
    return out;
}

struct Sha256::Impl {
    ossl::MdCtx ctx{ossl::check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new")};
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
    ossl::check(EVP_DigestInit_ex2(impl_->ctx.get(), ossl::sha256(), nullptr), "EVP_DigestInit_ex2");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const unsigned char> data) {
    ossl::check(EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()), "EVP_DigestUpdate");
}

Sha256Digest Sha256::finish() {
    Sha256Digest out{};
    unsigned int len = 0;
    ossl::check(EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len), "EVP_DigestFinal_ex");
    if (len != out.size()) throw std::logic_error("SHA-256 digest has an unexpected length");
    ossl::check(EVP_DigestInit_ex2(impl_->ctx.get(), nullptr, nullptr), "EVP_DigestInit_ex2");
    return out;
}

Sha256Digest sha256_bytes(std::string_view data) {
    Sha256 h;
    h.update({reinterpret_cast<const unsigned char*>(data.data()), data.size()});
    return h.finish();
}

HashedStream hash_fd(int fd) {
    // One buffer per thread, allocated once and never cleared: memory does
    // not grow with the input, and small files pay no per-file setup.
    thread_local const std::unique_ptr<unsigned char[]> buf = std::make_unique_for_overwrite<unsigned char[]>(hash_chunk_bytes);
    Sha256 h;
    HashedStream out;
    for (;;) {
        ssize_t n = ::read(fd, buf.get(), hash_chunk_bytes);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw fs::errno_error("read");
        }
        if (n == 0) break;
        h.update({buf.get(), static_cast<std::size_t>(n)});
        out.size += static_cast<std::uint64_t>(n);
    }
    out.sha256 = h.finish();
    return out;
}

}  // namespace condaguard
