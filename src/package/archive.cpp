#include <condaguard/package/archive.hpp>

#include <lib/archive/handles.hpp>
#include <lib/openssl/handles.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <unistd.h>

namespace condaguard {

namespace {

constexpr std::size_t read_chunk = 256 * 1024;

// Feeds libarchive from a file descriptor, hashing every byte handed over.
struct HashingSource {
    int fd;
    ossl::MdCtx sha{ossl::check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new")};
    ossl::MdCtx md5{ossl::check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new")};
    std::uint64_t size = 0;
    std::unique_ptr<unsigned char[]> buf = std::make_unique_for_overwrite<unsigned char[]>(read_chunk);
    int read_errno = 0;
    // The last bytes of the file, kept for the zip end-of-central-directory check.
    std::size_t tail_cap = 0;
    std::string tail;

    explicit HashingSource(int f) : fd(f) {
        ossl::check(EVP_DigestInit_ex2(sha.get(), ossl::sha256(), nullptr), "EVP_DigestInit_ex2");
        static const ossl::Md md5_md{ossl::check_ptr(EVP_MD_fetch(nullptr, "MD5", nullptr), "EVP_MD_fetch(MD5)")};
        ossl::check(EVP_DigestInit_ex2(md5.get(), md5_md.get(), nullptr), "EVP_DigestInit_ex2");
    }

    ssize_t next() {
        ssize_t n;
        do {
            n = ::read(fd, buf.get(), read_chunk);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            read_errno = errno;
            return -1;
        }
        ossl::check(EVP_DigestUpdate(sha.get(), buf.get(), static_cast<std::size_t>(n)), "EVP_DigestUpdate");
        ossl::check(EVP_DigestUpdate(md5.get(), buf.get(), static_cast<std::size_t>(n)), "EVP_DigestUpdate");
        size += static_cast<std::uint64_t>(n);
        if (tail_cap > 0) {
            // Keep only the last tail_cap bytes: copy just the end of this chunk.
            const auto len = static_cast<std::size_t>(n);
            const std::size_t take = std::min(len, tail_cap);
            const std::size_t keep = std::min(tail.size(), tail_cap - take);
            tail.erase(0, tail.size() - keep);
            tail.append(reinterpret_cast<const char*>(buf.get()) + (len - take), take);
        }
        return n;
    }

    static la_ssize_t callback(archive* a, void* self, const void** out) {
        auto* s = static_cast<HashingSource*>(self);
        ssize_t n = s->next();
        if (n < 0) {
            archive_set_error(a, s->read_errno, "read error");
            return -1;
        }
        *out = s->buf.get();
        return n;
    }

    // Hashes whatever libarchive did not need (padding after the last block).
    void drain() {
        while (next() > 0) {
        }
        if (read_errno != 0) throw std::system_error(read_errno, std::generic_category(), "read");
    }

    void finish(PackageScan& out) {
        unsigned int len = 0;
        ossl::check(EVP_DigestFinal_ex(sha.get(), out.sha256.data(), &len), "EVP_DigestFinal_ex");
        ossl::check(EVP_DigestFinal_ex(md5.get(), out.md5.data(), &len), "EVP_DigestFinal_ex");
        out.size = size;
    }
};

// Reads an inner archive from the current entry of an outer one.
struct EntrySource {
    archive* outer;
    static la_ssize_t callback(archive* a, void* self, const void** out) {
        auto* s = static_cast<EntrySource*>(self);
        thread_local std::unique_ptr<unsigned char[]> buf = std::make_unique_for_overwrite<unsigned char[]>(read_chunk);
        la_ssize_t n = archive_read_data(s->outer, buf.get(), read_chunk);
        if (n < 0) {
            archive_set_error(a, archive_errno(s->outer), "%s", la::error_of(s->outer).c_str());
            return -1;
        }
        *out = buf.get();
        return n;
    }
};

constexpr std::size_t eocd_bytes = 22;
constexpr std::size_t max_zip_comment = 0xffff;

std::uint32_t le(const std::string& s, std::size_t pos, int bytes) {
    std::uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[pos + static_cast<std::size_t>(i)]);
    return v;
}

// The streaming zip reader never looks at the central directory, so check
// that the file ends in an intact end-of-central-directory record that
// counts the members read and points at a central directory inside the file.
void check_zip_end(const std::string& tail, std::uint64_t file_size, int members, const std::string& what) {
    if (tail.size() >= eocd_bytes) {
        for (std::size_t pos = tail.size() - eocd_bytes + 1; pos-- > 0;) {
            if (tail.compare(pos, 4, "PK\x05\x06") != 0) continue;
            const std::uint64_t eocd_offset = file_size - (tail.size() - pos);
            const std::uint32_t entries = le(tail, pos + 10, 2);
            const std::uint32_t cd_size = le(tail, pos + 12, 4);
            const std::uint32_t cd_offset = le(tail, pos + 16, 4);
            const std::uint32_t comment = le(tail, pos + 20, 2);
            if (pos + eocd_bytes + comment != tail.size()) continue;
            if (entries != static_cast<std::uint32_t>(members) || std::uint64_t{cd_offset} + cd_size != eocd_offset)
                throw CorruptPackage(what + ": zip central directory does not match its members");
            return;
        }
    }
    throw CorruptPackage(what + ": zip end-of-central-directory record is missing or damaged");
}

void discard_data(archive* a, const std::string& what) {
    thread_local std::unique_ptr<unsigned char[]> buf = std::make_unique_for_overwrite<unsigned char[]>(read_chunk);
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf.get(), read_chunk);
        if (n == 0) return;
        if (n < 0) throw CorruptPackage(what + ": " + la::error_of(a));
    }
}

std::string read_entry_capped(archive* a, const std::string& what) {
    std::string data;
    char buf[16384];
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n == 0) return data;
        if (n < 0) throw CorruptPackage(what + ": " + la::error_of(a));
        if (data.size() + static_cast<std::size_t>(n) > max_index_json_bytes)
            throw CorruptPackage(fmt::format("{}: info/index.json is larger than {} bytes", what, max_index_json_bytes));
        data.append(buf, static_cast<std::size_t>(n));
    }
}

// Walks a tar stream to its end, every member's data read (so compression
// checksums are verified), returning info/index.json when present.
std::optional<nlohmann::json> walk_tar(archive* a, const std::string& what) {
    std::optional<nlohmann::json> index;
    archive_entry* e = nullptr;
    for (;;) {
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK) throw CorruptPackage(what + ": " + la::error_of(a));
        const char* p = archive_entry_pathname(e);
        std::string_view path = p != nullptr ? p : "";
        if (path.starts_with("./")) path.remove_prefix(2);
        if (path == "info/index.json" && archive_entry_filetype(e) == AE_IFREG) {
            if (index) throw CorruptPackage(what + ": info/index.json appears twice");
            const std::string text = read_entry_capped(a, what);
            nlohmann::json j;
            try {
                j = parse_json(text, JsonLimits{.max_bytes = max_index_json_bytes});
            } catch (const JsonError& e) {
                throw CorruptPackage(what + ": info/index.json: " + e.what());
            }
            if (!j.is_object())
                throw CorruptPackage(what + ": info/index.json is not a JSON object");
            index = std::move(j);
        } else {
            discard_data(a, what);
        }
    }
    return index;
}

la::Reader new_reader() {
    la::Reader r{archive_read_new()};
    if (!r) throw std::bad_alloc();
    return r;
}

void open_from(archive* a, void* self, archive_read_callback* cb, const std::string& what) {
    if (archive_read_open(a, self, nullptr, cb, nullptr) != ARCHIVE_OK)
        throw CorruptPackage(what + ": " + la::error_of(a));
}

}  // namespace

PackageScan scan_package(int fd, const PackageName& name, const std::string& display) {
    HashingSource src(fd);
    PackageScan out;
    int zip_members = -1;  // set for .conda: checked against the zip's end record
    la::Reader a = new_reader();
    if (name.format == PackageFormat::TarBz2) {
        archive_read_support_filter_bzip2(a.get());
        archive_read_support_format_tar(a.get());
        open_from(a.get(), &src, &HashingSource::callback, display);
        out.index_json = walk_tar(a.get(), display);
    } else {
        // The outer zip is read as a stream (no seeking): every member is read
        // through, so CRC-32s are checked and every byte is hashed once.
        archive_read_support_format_zip_streamable(a.get());
        src.tail_cap = eocd_bytes + max_zip_comment;
        open_from(a.get(), &src, &HashingSource::callback, display);
        const std::string info_member = "info-" + name.stem() + ".tar.zst";
        const std::string pkg_member = "pkg-" + name.stem() + ".tar.zst";
        int info_seen = 0, pkg_seen = 0, members = 0;
        archive_entry* e = nullptr;
        for (;;) {
            int rc = archive_read_next_header(a.get(), &e);
            if (rc == ARCHIVE_EOF) break;
            if (rc != ARCHIVE_OK) throw CorruptPackage(display + ": " + la::error_of(a.get()));
            const char* p = archive_entry_pathname(e);
            const std::string member = p != nullptr ? p : "";
            ++members;
            if (member == info_member) {
                ++info_seen;
                EntrySource inner_src{a.get()};
                la::Reader inner = new_reader();
                archive_read_support_filter_zstd(inner.get());
                archive_read_support_format_tar(inner.get());
                const std::string what = display + ": " + member;
                open_from(inner.get(), &inner_src, &EntrySource::callback, what);
                out.index_json = walk_tar(inner.get(), what);
                discard_data(a.get(), display);  // the rest of the member, to its CRC
            } else {
                if (member == pkg_member) ++pkg_seen;
                discard_data(a.get(), display + ": " + member);
            }
        }
        if (info_seen != 1 || pkg_seen != 1)
            throw CorruptPackage(fmt::format("{}: expected one {} and one {} (found {} and {})", display, info_member,
                                             pkg_member, info_seen, pkg_seen));
        zip_members = members;
    }
    src.drain();
    if (zip_members >= 0) check_zip_end(src.tail, src.size, zip_members, display);
    src.finish(out);
    return out;
}

std::optional<std::string> identity_mismatch(const nlohmann::json& j, const PackageName& name,
                                             std::string_view subdir) {
    auto field = [&](const char* k) -> std::optional<std::string> {
        auto it = j.find(k);
        if (it == j.end() || !it->is_string()) return std::nullopt;
        return it->get<std::string>();
    };
    for (auto [key, want] : {std::pair<const char*, const std::string*>{"name", &name.name},
                             {"version", &name.version},
                             {"build", &name.build}}) {
        auto got = field(key);
        if (!got) return fmt::format("info/index.json has no string '{}'", key);
        if (*got != *want)
            return fmt::format("info/index.json says {} '{}' but the file name says '{}'", key, *got, *want);
    }
    if (auto it = j.find("build_number"); it == j.end() || !it->is_number_integer())
        return std::string("info/index.json has no integer 'build_number'");
    if (auto sd = field("subdir"); sd && !subdir.empty() && *sd != subdir)
        return fmt::format("info/index.json says subdir '{}' but the package is in '{}'", *sd, subdir);
    return std::nullopt;
}

}  // namespace condaguard
