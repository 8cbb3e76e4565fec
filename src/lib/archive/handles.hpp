// Move-only owner for libarchive read handles, and libarchive's error text.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <string>

namespace condaguard::la {

struct ReadFree {
    void operator()(archive* a) const noexcept { archive_read_free(a); }
};
using Reader = std::unique_ptr<archive, ReadFree>;

inline std::string error_of(archive* a) {
    const char* s = archive_error_string(a);
    return s != nullptr ? s : "unknown libarchive error";
}

}  // namespace condaguard::la
