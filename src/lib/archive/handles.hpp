// Move-only owners for libarchive handles (readers, writers, entries), and
// libarchive's error text.
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

struct WriteFree {
    void operator()(archive* a) const noexcept { archive_write_free(a); }
};
using Writer = std::unique_ptr<archive, WriteFree>;

struct EntryFree {
    void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};
using Entry = std::unique_ptr<archive_entry, EntryFree>;

// archive_error_string as one line: libarchive's messages can end in a
// newline (and may quote names from the archive), so trailing whitespace is
// dropped and any other control character becomes a space.
inline std::string error_of(archive* a) {
    const char* s = archive_error_string(a);
    std::string text = s != nullptr ? s : "unknown libarchive error";
    while (!text.empty() && (text.back() == ' ' || (static_cast<unsigned char>(text.back()) < 0x20)))
        text.pop_back();
    for (char& c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return text.empty() ? "unknown libarchive error" : text;
}

}  // namespace condaguard::la
