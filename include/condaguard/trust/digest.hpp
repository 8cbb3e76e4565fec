// Streaming SHA-256: files are hashed in fixed-size chunks as they are read.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace condaguard {

using Sha256Digest = std::array<unsigned char, 32>;

std::string to_hex(std::span<const unsigned char> bytes);

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    void update(std::span<const unsigned char> data);
    Sha256Digest finish();  // resets for reuse

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

Sha256Digest sha256_bytes(std::string_view data);

// Read size of one chunk when hashing a file descriptor.
inline constexpr std::size_t hash_chunk_bytes = 1 << 20;

struct HashedStream {
    Sha256Digest sha256;
    std::uint64_t size = 0;
};

// Hashes everything readable from `fd` until EOF, one chunk at a time.
// Throws std::system_error on read errors.
HashedStream hash_fd(int fd);

}  // namespace condaguard
