// A move-only owner for libzstd's decompression context, and zstd's size_t
// status codes as exceptions.
#pragma once

#include <zstd.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace condaguard::zstd {

struct DCtxFree {
    void operator()(ZSTD_DCtx* p) const noexcept { (void)ZSTD_freeDCtx(p); }
};
using DCtx = std::unique_ptr<ZSTD_DCtx, DCtxFree>;

inline DCtx make_dctx() {
    DCtx d{ZSTD_createDCtx()};
    if (!d) throw std::runtime_error("ZSTD_createDCtx failed");
    return d;
}

// Throws std::runtime_error("what: zstd's text") when `status` is an error.
inline std::size_t check(std::size_t status, const char* what) {
    if (ZSTD_isError(status) != 0) throw std::runtime_error(std::string(what) + ": " + ZSTD_getErrorName(status));
    return status;
}

}  // namespace condaguard::zstd
