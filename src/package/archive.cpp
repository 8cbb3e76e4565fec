#include <condaguard/package/archive.hpp>

#include "archive_walk.hpp"
#include "tar_headers.hpp"

#include <lib/archive/handles.hpp>
#include <lib/libc/locale.hpp>
#include <lib/openssl/handles.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/text.hpp>
#include <condaguard/sys/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <unistd.h>
#include <unordered_map>

namespace condaguard {

namespace {

constexpr std::size_t read_chunk = 256 * 1024;

// Feeds libarchive from a file descriptor, hashing every byte handed over
// (SHA-256, and MD5 unless told not to: extraction compares SHA-256 only,
// and MD5 costs more than SHA-256 on CPUs with SHA extensions).
// With `max_bytes`, reads at most max_bytes + 1 bytes: one more is enough to
// know the file is longer, and nothing past it is read.
struct HashingSource {
    int fd;
    std::optional<std::uint64_t> max_bytes;
    ossl::MdCtx sha{ossl::check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new")};
    ossl::MdCtx md5;  // null when MD5 is not wanted
    std::uint64_t size = 0;
    std::unique_ptr<unsigned char[]> buf = std::make_unique_for_overwrite<unsigned char[]>(read_chunk);
    int read_errno = 0;
    // Set when a callback had to stop libarchive with an exception of ours.
    std::exception_ptr pending;
    // The last bytes of the file, kept for the zip end-of-central-directory check.
    std::size_t tail_cap = 0;
    std::string tail;

    explicit HashingSource(int f, std::optional<std::uint64_t> max = std::nullopt,
                           detail::Digests digests = detail::Digests::Sha256AndMd5)
        : fd(f), max_bytes(max) {
        ossl::check(EVP_DigestInit_ex2(sha.get(), ossl::sha256(), nullptr), "EVP_DigestInit_ex2");
        if (digests == detail::Digests::Sha256Only) return;
        static const ossl::Md md5_md{ossl::check_ptr(EVP_MD_fetch(nullptr, "MD5", nullptr), "EVP_MD_fetch(MD5)")};
        md5 = ossl::MdCtx{ossl::check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new")};
        ossl::check(EVP_DigestInit_ex2(md5.get(), md5_md.get(), nullptr), "EVP_DigestInit_ex2");
    }

    bool over_max() const { return max_bytes && size > *max_bytes; }

    // Reads and hashes the next chunk: its length, 0 at the end (or once past
    // max_bytes), -1 on a read error (read_errno set).
    ssize_t next() {
        std::size_t want = read_chunk;
        if (max_bytes) {
            if (over_max()) return 0;
            want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *max_bytes + 1 - size));
        }
        ssize_t n;
        do {
            n = ::read(fd, buf.get(), want);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            read_errno = errno;
            return -1;
        }
        ossl::check(EVP_DigestUpdate(sha.get(), buf.get(), static_cast<std::size_t>(n)), "EVP_DigestUpdate");
        if (md5)
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
        try {
            ssize_t n = s->next();
            if (n < 0) {
                archive_set_error(a, s->read_errno, "read error");
                return -1;
            }
            *out = s->buf.get();
            return n;
        } catch (...) {  // never through libarchive's C frames
            s->pending = std::current_exception();
            archive_set_error(a, EIO, "internal error");
            return -1;
        }
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
        if (md5) ossl::check(EVP_DigestFinal_ex(md5.get(), out.md5.data(), &len), "EVP_DigestFinal_ex");
        out.size = size;
    }
};

using detail::member_name;

// Everything one scan has cost so far, checked against the limits as it
// grows: members at every level, and bytes as archive_read_data hands them
// out at every level.
class Budget {
public:
    Budget(const ScanLimits& limits, const HashingSource& src, std::uint64_t file_size)
        : limits_(limits), src_(src), file_size_(file_size) {}

    void member() {
        if (++members_ > limits_.max_members)
            throw CorruptPackage(fmt::format("has more than {} members (raise with --max-members)", limits_.max_members));
    }

    void add(std::uint64_t n) { unpacked_ += n; }

    void check() const {
        if (unpacked_ > limits_.max_unpacked_bytes)
            throw CorruptPackage(fmt::format("unpacks to more than {} bytes (raise with --max-unpacked-bytes)",
                                             limits_.max_unpacked_bytes));
        // Judged against the whole file's size, so a package whose start
        // compresses better than its end is not refused half way.
        const std::uint64_t packed = std::max<std::uint64_t>({file_size_, src_.size, 1});
        const bool over_ratio = unpacked_ / packed > limits_.max_ratio ||
                                (unpacked_ / packed == limits_.max_ratio && unpacked_ % packed != 0);
        if (unpacked_ > ratio_floor_bytes && over_ratio)
            throw CorruptPackage(fmt::format("unpacks to more than {} times its size (raise with --max-ratio)",
                                             limits_.max_ratio));
    }

    void unpacked(std::uint64_t n) {
        add(n);
        check();
    }

    const ScanLimits& limits() const { return limits_; }

private:
    const ScanLimits& limits_;
    const HashingSource& src_;
    std::uint64_t file_size_;
    std::uint64_t members_ = 0;
    std::uint64_t unpacked_ = 0;
};

// Reads an inner archive from the current entry of an outer one. The bytes
// it hands over are counted; the inner walk checks the budget.
struct EntrySource {
    archive* outer;
    Budget* budget;
    static la_ssize_t callback(archive* a, void* self, const void** out) {
        auto* s = static_cast<EntrySource*>(self);
        thread_local std::unique_ptr<unsigned char[]> buf = std::make_unique_for_overwrite<unsigned char[]>(read_chunk);
        la_ssize_t n = archive_read_data(s->outer, buf.get(), read_chunk);
        if (n < 0) {
            archive_set_error(a, archive_errno(s->outer), "%s", la::error_of(s->outer).c_str());
            return -1;
        }
        s->budget->add(static_cast<std::uint64_t>(n));
        *out = buf.get();
        return n;
    }
};

// The decompressed bytes of one tar, taken block by block from a raw-format
// reader and handed on to the tar reader; every byte passes the header
// checker first, so libarchive never parses a header the checker has not
// accepted.
struct TarTee {
    archive* raw;
    detail::TarHeaderChecker checker;
    std::exception_ptr* pending;  // where a refusal waits for Scan::fail
    la_int64_t next_offset = 0;

    static la_ssize_t callback(archive* a, void* self, const void** out) {
        auto* s = static_cast<TarTee*>(self);
        try {
            const void* buf = nullptr;
            std::size_t size = 0;
            la_int64_t offset = 0;
            do {
                const int rc = archive_read_data_block(s->raw, &buf, &size, &offset);
                if (rc == ARCHIVE_EOF) return 0;
                if (rc != ARCHIVE_OK) {
                    archive_set_error(a, archive_errno(s->raw), "%s", la::error_of(s->raw).c_str());
                    return -1;
                }
            } while (size == 0);
            if (offset != s->next_offset) throw CorruptPackage("decompressed tar stream has a gap");
            s->next_offset += static_cast<la_int64_t>(size);
            s->checker.feed(static_cast<const unsigned char*>(buf), size);
            *out = buf;
            return static_cast<la_ssize_t>(size);
        } catch (...) {  // never through libarchive's C frames
            *s->pending = std::current_exception();
            archive_set_error(a, EIO, "internal error");
            return -1;
        }
    }
};

// The state of one scan: the bytes' source (whose callbacks may have
// stashed an exception) and the budget.
struct Scan {
    HashingSource& src;
    Budget budget;
    // Where tree members go when extracting; nullptr when scanning.
    detail::MemberSink* sink = nullptr;

    // A libarchive failure: our own exception from a callback when there is
    // one, else libarchive's message after `where` (a member, or nothing).
    [[noreturn]] void fail(archive* a, const std::string& where) const {
        if (src.pending) std::rethrow_exception(src.pending);
        throw CorruptPackage(where + la::error_of(a));
    }
};

std::string_view without_trailing_slashes(std::string_view s) {
    while (s.ends_with('/')) s.remove_suffix(1);
    return s;
}

// The path a member would be extracted to: leading "./", repeated '/' and
// "." segments dropped, no trailing '/'. Absolute paths and ".." segments
// are never legitimate in a conda package and are refused. "" is the root.
std::string normalise_member_path(std::string_view raw, const std::string& where) {
    if (raw.starts_with('/'))
        throw CorruptPackage(fmt::format("{}member {} has an absolute path", where, member_name(raw)));
    std::string out;
    std::size_t pos = 0;
    while (pos <= raw.size()) {
        std::size_t end = raw.find('/', pos);
        if (end == std::string_view::npos) end = raw.size();
        const std::string_view seg = raw.substr(pos, end - pos);
        if (seg == "..")
            throw CorruptPackage(fmt::format("{}member {} has a '..' segment", where, member_name(raw)));
        if (!seg.empty() && seg != ".") {
            if (!out.empty()) out += '/';
            out += seg;
        }
        pos = end + 1;
    }
    return out;
}

// The normalised paths of one archive's members: a second member with the
// same path is refused (one archive, one meaning). Bounded by max_members.
class MemberPaths {
public:
    // Records the member; returns its normalised path.
    std::string add(std::string_view raw, bool is_dir, const std::string& where) {
        std::string norm = normalise_member_path(raw, where);
        if (norm.empty()) {
            if (is_dir) return norm;  // "./": the root itself
            throw CorruptPackage(fmt::format("{}member {} has an empty path", where, member_name(raw)));
        }
        auto [it, fresh] = seen_.try_emplace(norm, raw);
        if (!fresh) {
            if (it->second == raw)
                throw CorruptPackage(fmt::format("{}member {} appears twice", where, member_name(raw)));
            throw CorruptPackage(
                fmt::format("{}members {} and {} are the same path", where, member_name(it->second), member_name(raw)));
        }
        return norm;
    }

private:
    std::unordered_map<std::string, std::string> seen_;  // normalised -> as written
};

constexpr std::size_t eocd_bytes = 22;
constexpr std::size_t max_zip_comment = 0xffff;
// A .conda's central directory has three short entries; anything larger is refused.
constexpr std::size_t max_central_directory = 0x10000;
constexpr std::size_t cd_entry_bytes = 46;     // fixed part of a central directory entry
constexpr std::size_t local_header_bytes = 30;  // fixed part of a local file header

std::uint32_t le(std::string_view s, std::size_t pos, int bytes) {
    std::uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[pos + static_cast<std::size_t>(i)]);
    return v;
}

// A member as the stream reader met it, in file order.
struct StreamedMember {
    std::string name;
    std::int64_t header_offset = 0;  // where the stream reader found its local header
};

// The streaming zip reader reads local headers front to back, but conda
// (Python's zipfile) finds members through the central directory at the end.
// A .conda is accepted only when both say the same thing: the end record is
// intact and points at a central directory that ends where it begins; the
// directory lists exactly the members read, with the same names in the same
// order of their local headers, at the very offsets where the stream reader
// found those headers (a directory entry pointing into another member's data
// would hand conda bytes we never read as a member); and each entry's local
// header (read with pread on the same descriptor) carries the name the
// directory gives it.
void check_zip_directory(int fd, const std::string& tail, std::uint64_t file_size,
                         const std::vector<StreamedMember>& streamed) {
    if (tail.size() < eocd_bytes) throw CorruptPackage("zip end-of-central-directory record is missing or damaged");
    std::size_t eocd = std::string::npos;
    for (std::size_t pos = tail.size() - eocd_bytes + 1; pos-- > 0;) {
        if (tail.compare(pos, 4, "PK\x05\x06") == 0 && pos + eocd_bytes + le(tail, pos + 20, 2) == tail.size()) {
            eocd = pos;
            break;
        }
    }
    if (eocd == std::string::npos) throw CorruptPackage("zip end-of-central-directory record is missing or damaged");
    const std::uint64_t eocd_offset = file_size - (tail.size() - eocd);
    const std::uint32_t disk = le(tail, eocd + 4, 2), cd_disk = le(tail, eocd + 6, 2);
    const std::uint32_t entries_here = le(tail, eocd + 8, 2), entries = le(tail, eocd + 10, 2);
    const std::uint32_t cd_size = le(tail, eocd + 12, 4), cd_offset = le(tail, eocd + 16, 4);
    if (disk != 0 || cd_disk != 0 || entries_here != entries)
        throw CorruptPackage("zip archive spans several disks");
    if (entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff)
        throw CorruptPackage("zip64 archives are not supported");
    if (entries != streamed.size() || std::uint64_t{cd_offset} + cd_size != eocd_offset)
        throw CorruptPackage("zip central directory does not match its members");
    if (cd_size > max_central_directory || cd_size > eocd)
        throw CorruptPackage(fmt::format("zip central directory is larger than {} bytes", max_central_directory));

    struct CdEntry {
        std::uint32_t local_offset;
        std::string name;
    };
    std::vector<CdEntry> cd;
    const std::string_view dir = std::string_view(tail).substr(eocd - cd_size, cd_size);
    std::size_t pos = 0;
    for (std::uint32_t i = 0; i < entries; ++i) {
        if (pos + cd_entry_bytes > dir.size() || dir.compare(pos, 4, "PK\x01\x02") != 0)
            throw CorruptPackage("zip central directory entry is damaged");
        const std::size_t name_len = le(dir, pos + 28, 2), extra = le(dir, pos + 30, 2), comment = le(dir, pos + 32, 2);
        const std::size_t next = pos + cd_entry_bytes + name_len + extra + comment;
        if (next > dir.size()) throw CorruptPackage("zip central directory entry is damaged");
        cd.push_back({le(dir, pos + 42, 4), std::string(dir.substr(pos + cd_entry_bytes, name_len))});
        pos = next;
    }
    if (pos != dir.size()) throw CorruptPackage("zip central directory has bytes after its entries");
    std::sort(cd.begin(), cd.end(), [](const auto& a, const auto& b) { return a.local_offset < b.local_offset; });
    for (std::size_t i = 0; i < cd.size(); ++i) {
        if (cd[i].local_offset != streamed[i].header_offset)
            throw CorruptPackage(fmt::format("zip central directory puts member {} at offset {}, read at offset {}",
                                             member_name(cd[i].name), cd[i].local_offset, streamed[i].header_offset));
        if (cd[i].name != streamed[i].name)
            throw CorruptPackage(fmt::format("zip central directory names member {} {}, its local header {}", i + 1,
                                             member_name(cd[i].name), member_name(streamed[i].name)));
        if (i > 0 && cd[i].local_offset == cd[i - 1].local_offset)
            throw CorruptPackage("zip central directory lists two members at one offset");
        std::string header(local_header_bytes + cd[i].name.size(), '\0');
        const ssize_t n = ::pread(fd, header.data(), header.size(), static_cast<off_t>(cd[i].local_offset));
        if (n != static_cast<ssize_t>(header.size()) || header.compare(0, 4, "PK\x03\x04") != 0 ||
            le(header, 26, 2) != cd[i].name.size() ||
            std::string_view(header).substr(local_header_bytes) != cd[i].name)
            throw CorruptPackage(fmt::format("zip central directory entry {} does not point at its local header",
                                             member_name(cd[i].name)));
    }
}

// Reads the current member's data to its end, counting it. With `cap`, a
// member longer than cap bytes is refused with `too_big()` as the reason.
template <class TooBig>
void skip_data(archive* a, Scan& s, const std::string& where, std::uint64_t cap, TooBig&& too_big) {
    thread_local std::unique_ptr<unsigned char[]> buf = std::make_unique_for_overwrite<unsigned char[]>(read_chunk);
    std::uint64_t total = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf.get(), read_chunk);
        if (n == 0) return;
        if (n < 0) s.fail(a, where);
        total += static_cast<std::uint64_t>(n);
        s.budget.unpacked(static_cast<std::uint64_t>(n));
        if (total > cap) throw CorruptPackage(too_big());
    }
}

void discard_data(archive* a, Scan& s, const std::string& where) {
    skip_data(a, s, where, UINT64_MAX, [] { return std::string(); });
}

// The current member's data handed to a sink, chunk by chunk, counted.
class CountedMemberData final : public detail::MemberData {
public:
    CountedMemberData(archive* a, Scan& s, const std::string& where) : a_(a), s_(s), where_(where) {}

    std::span<const unsigned char> next() override {
        thread_local std::unique_ptr<unsigned char[]> buf =
            std::make_unique_for_overwrite<unsigned char[]>(read_chunk);
        const la_ssize_t n = archive_read_data(a_, buf.get(), read_chunk);
        if (n < 0) s_.fail(a_, where_);
        s_.budget.unpacked(static_cast<std::uint64_t>(n));
        return {buf.get(), static_cast<std::size_t>(n)};
    }

private:
    archive* a_;
    Scan& s_;
    const std::string& where_;
};

std::string read_entry_capped(archive* a, Scan& s, const std::string& where) {
    std::string data;
    char buf[16384];
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n == 0) return data;
        if (n < 0) s.fail(a, where);
        s.budget.unpacked(static_cast<std::uint64_t>(n));
        if (data.size() + static_cast<std::size_t>(n) > max_index_json_bytes)
            throw CorruptPackage(fmt::format("{}info/index.json is larger than {} bytes", where, max_index_json_bytes));
        data.append(buf, static_cast<std::size_t>(n));
    }
}

// Walks a tar stream to its end, every member's data read (so compression
// checksums are verified), returning info/index.json when present. `where`
// prefixes reasons ("" or "info-NAME.tar.zst: ").
// `headers` has checked the stream's headers; libarchive must report the
// very members it queued.
std::optional<nlohmann::json> walk_tar(archive* a, Scan& s, detail::TarHeaderChecker& headers, MemberPaths& paths,
                                       const std::string& where) {
    std::optional<nlohmann::json> index;
    archive_entry* e = nullptr;
    for (;;) {
        int rc = archive_read_next_header(a, &e);
        s.budget.check();  // what the header cost to reach
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK) s.fail(a, where);
        s.budget.member();
        const char* p = archive_entry_pathname(e);
        const std::string raw = p != nullptr ? p : "";
        const auto checked = headers.next_member();
        if (!checked || without_trailing_slashes(checked->name) != without_trailing_slashes(raw) ||
            !archive_entry_size_is_set(e) || static_cast<std::uint64_t>(archive_entry_size(e)) != checked->size)
            throw CorruptPackage(fmt::format("{}tar readers disagree about member {}", where, member_name(raw)));
        const std::string path = paths.add(raw, archive_entry_filetype(e) == AE_IFDIR, where);
        if (s.sink != nullptr) {
            CountedMemberData data(a, s, where);
            s.sink->member(e, path, raw, where, data);
            discard_data(a, s, where);  // whatever the sink left, to the compression checksum
        } else if (path == "info/index.json" && archive_entry_filetype(e) == AE_IFREG) {
            const std::string text = read_entry_capped(a, s, where);
            nlohmann::json j;
            try {
                j = parse_json(text, JsonLimits{.max_bytes = max_index_json_bytes});
            } catch (const JsonError& e) {
                throw CorruptPackage(where + "info/index.json: " + e.what());
            }
            if (!j.is_object()) throw CorruptPackage(where + "info/index.json is not a JSON object");
            index = std::move(j);
        } else if (path.starts_with("info/")) {
            const std::uint64_t cap = s.budget.limits().max_info_bytes;
            skip_data(a, s, where, cap, [&] {
                return fmt::format("{}member {} is larger than {} bytes (raise with --max-info-bytes)", where,
                                   member_name(raw), cap);
            });
        } else {
            discard_data(a, s, where);
        }
    }
    return index;
}

la::Reader new_reader() {
    la::Reader r{archive_read_new()};
    if (!r) throw std::bad_alloc();
    return r;
}

void open_from(archive* a, Scan& s, void* self, archive_read_callback* cb, const std::string& where) {
    if (archive_read_open(a, self, nullptr, cb, nullptr) != ARCHIVE_OK) s.fail(a, where);
}

using AddFilter = int (*)(archive*);

// Walks a compressed tar read through `cb`: decompressed once by a
// raw-format reader, its bytes pass the header checker on their way to the
// tar reader (TarTee).
std::optional<nlohmann::json> walk_checked_tar(Scan& s, void* src, archive_read_callback* cb, AddFilter filter,
                                               MemberPaths& paths, const std::string& where) {
    la::Reader raw = new_reader();
    if (filter(raw.get()) != ARCHIVE_OK || archive_read_support_format_raw(raw.get()) != ARCHIVE_OK)
        throw std::runtime_error("libarchive: " + la::error_of(raw.get()));
    open_from(raw.get(), s, src, cb, where);
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(raw.get(), &e);
    if (rc == ARCHIVE_EOF) throw CorruptPackage(where + "tar stream is empty");
    if (rc != ARCHIVE_OK) s.fail(raw.get(), where);
    TarTee tee{.raw = raw.get(), .checker = detail::TarHeaderChecker(where), .pending = &s.src.pending};
    la::Reader tar = new_reader();
    if (archive_read_support_format_tar(tar.get()) != ARCHIVE_OK)
        throw std::runtime_error("libarchive: " + la::error_of(tar.get()));
    open_from(tar.get(), s, &tee, &TarTee::callback, where);
    auto index = walk_tar(tar.get(), s, tee.checker, paths, where);
    if (s.src.pending) std::rethrow_exception(s.src.pending);
    tee.checker.finish();
    return index;
}

// Walks the tar in the current member of the outer zip `a` (zstd-compressed).
std::optional<nlohmann::json> walk_inner_tar(archive* a, Scan& s, MemberPaths& paths, const std::string& member) {
    EntrySource inner_src{a, &s.budget};
    const std::string where = member + ": ";
    auto index = walk_checked_tar(s, &inner_src, &EntrySource::callback, archive_read_support_filter_zstd, paths, where);
    discard_data(a, s, where);  // the rest of the member, to its CRC
    return index;
}

PackageScan scan_from(HashingSource& src, const PackageName& name, const ScanLimits& limits, std::uint64_t file_size,
                      detail::MemberSink* sink = nullptr) {
    // libarchive converts member names to the thread's locale charset; in the
    // C locale a UTF-8 name (pax paths are UTF-8, and so are conda's) cannot
    // be converted and the member would be refused. Read names as UTF-8, for
    // this thread only.
    const libc::ThreadCtype utf8("C.UTF-8");
    Scan s{.src = src, .budget = Budget(limits, src, file_size), .sink = sink};
    PackageScan out;
    std::optional<std::vector<StreamedMember>> zip_members;  // set for .conda: checked against its central directory
    if (name.format == PackageFormat::TarBz2) {
        MemberPaths paths;
        out.index_json =
            walk_checked_tar(s, &src, &HashingSource::callback, archive_read_support_filter_bzip2, paths, "");
    } else {
        // The outer zip is read as a stream (no seeking): every member is read
        // through, so CRC-32s are checked and every byte is hashed once. Both
        // inner tars extract into one tree, so they share one set of paths.
        la::Reader a = new_reader();
        archive_read_support_format_zip_streamable(a.get());
        src.tail_cap = eocd_bytes + max_zip_comment + max_central_directory;
        open_from(a.get(), s, &src, &HashingSource::callback, "");
        const std::string info_member = "info-" + name.stem() + ".tar.zst";
        const std::string pkg_member = "pkg-" + name.stem() + ".tar.zst";
        MemberPaths zip_paths, tree_paths;
        int info_seen = 0, pkg_seen = 0;
        std::vector<StreamedMember> members;
        archive_entry* e = nullptr;
        for (;;) {
            int rc = archive_read_next_header(a.get(), &e);
            s.budget.check();
            if (rc == ARCHIVE_EOF) break;
            if (rc != ARCHIVE_OK) s.fail(a.get(), "");
            s.budget.member();
            const char* p = archive_entry_pathname(e);
            const std::string raw = p != nullptr ? p : "";
            members.push_back({raw, archive_read_header_position(a.get())});
            zip_paths.add(raw, archive_entry_filetype(e) == AE_IFDIR, "");
            // conda looks these two up by their exact names.
            if (raw == info_member || raw == pkg_member) {
                ++(raw == info_member ? info_seen : pkg_seen);
                if (auto index = walk_inner_tar(a.get(), s, tree_paths, raw)) out.index_json = std::move(index);
            } else {
                discard_data(a.get(), s, member_name(raw) + ": ");
            }
        }
        if (info_seen != 1 || pkg_seen != 1)
            throw CorruptPackage(fmt::format("expected one {} and one {} (found {} and {})", info_member, pkg_member,
                                             info_seen, pkg_seen));
        zip_members = std::move(members);
    }
    src.drain();
    if (zip_members) check_zip_directory(src.fd, src.tail, src.size, *zip_members);
    src.finish(out);
    return out;
}

void rewind(int fd) {
    if (::lseek(fd, 0, SEEK_SET) != 0) throw fs::errno_error("package: lseek");
}

}  // namespace

std::string detail::normalised_member_path(std::string_view raw, const std::string& where) {
    return normalise_member_path(raw, where);
}

PackageScan detail::walk_package(int fd, const PackageName& name, const ScanLimits& limits,
                                 std::optional<std::uint64_t> max_bytes, MemberSink& sink, Digests digests) {
    rewind(fd);
    HashingSource src(fd, max_bytes, digests);
    std::uint64_t file_size = 0;
    if (max_bytes) {
        file_size = *max_bytes;
    } else if (const struct stat st = fs::fstat_or_throw(fd, "package"); S_ISREG(st.st_mode)) {
        file_size = static_cast<std::uint64_t>(st.st_size);
    }
    return scan_from(src, name, limits, file_size, &sink);
}

PackageScan scan_package(int fd, const PackageName& name, const ScanLimits& limits) {
    HashingSource src(fd);
    const struct stat st = fs::fstat_or_throw(fd, "package");
    return scan_from(src, name, limits, S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0);
}

PackageScan scan_trusted_package(int fd, const PackageName& name, const TrustedRecord& record,
                                 const ScanLimits& limits) {
    {
        // First the raw bytes alone, never past record.size + 1.
        HashingSource raw(fd, record.size);
        raw.drain();
        PackageScan hashed;
        raw.finish(hashed);
        if (hashed.size > record.size)
            throw VerdictError(Verdict::Invalid,
                               fmt::format("larger than the signed size of {} bytes", record.size));
        if (hashed.size < record.size)
            throw VerdictError(Verdict::Invalid, fmt::format("{} bytes, smaller than the signed size of {} bytes",
                                                             hashed.size, record.size));
        if (hashed.sha256 != record.sha256)
            throw VerdictError(Verdict::Invalid, "sha256 does not match the signed index");
        if (record.md5 && hashed.md5 != *record.md5)
            throw VerdictError(Verdict::Invalid, "md5 does not match the signed index");
    }
    // The signed bytes: now decompress them, from the same descriptor. They
    // are hashed again on the way; bytes changed in between are refused.
    rewind(fd);
    HashingSource src(fd, record.size);
    const auto changed = [] { return VerdictError(Verdict::Invalid, "changed while being read"); };
    PackageScan out;
    try {
        out = scan_from(src, name, limits, record.size);
    } catch (const CorruptPackage&) {
        if (src.over_max()) throw changed();
        throw;
    }
    if (out.size != record.size || out.sha256 != record.sha256) throw changed();
    return out;
}

namespace {

template <std::size_t N>
bool from_hex(std::string_view hex, std::array<unsigned char, N>& out) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (hex.size() != 2 * N) return false;
    for (std::size_t i = 0; i < N; ++i) {
        const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return true;
}

}  // namespace

std::optional<TrustedRecord> trusted_record_from_hex(std::uint64_t size, std::string_view sha256_hex,
                                                     std::string_view md5_hex) {
    TrustedRecord r{.size = size, .sha256 = {}, .md5 = std::nullopt};
    if (!from_hex(sha256_hex, r.sha256)) return std::nullopt;
    if (!md5_hex.empty() && !from_hex(md5_hex, r.md5.emplace())) return std::nullopt;
    return r;
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
