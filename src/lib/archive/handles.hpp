// Move-only owners for libarchive handles, and libarchive errors as exceptions.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace condaguard::la {

struct ReadFree {
    void operator()(archive* a) const noexcept { archive_read_free(a); }
};
struct WriteFree {
    void operator()(archive* a) const noexcept { archive_write_free(a); }
};
struct EntryFree {
    void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};
using Reader = std::unique_ptr<archive, ReadFree>;
using Writer = std::unique_ptr<archive, WriteFree>;
using Entry = std::unique_ptr<archive_entry, EntryFree>;

inline std::string error_of(archive* a) {
    const char* s = archive_error_string(a);
    return s != nullptr ? s : "unknown libarchive error";
}

// Throws std::runtime_error("what: libarchive's message") unless status is OK (or WARN when allowed).
inline void check(archive* a, int status, const std::string& what) {
    if (status != ARCHIVE_OK) throw std::runtime_error(what + ": " + error_of(a));
}

}  // namespace condaguard::la
