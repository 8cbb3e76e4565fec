// Internal to src/package: the raw header stream of a tar, checked as its
// bytes pass on their way to libarchive's tar reader.
//
// libarchive (which we read with) and Python's tarfile (which conda
// extracts with) resolve some header combinations differently: pax
// GNU.sparse.name beside path, a pax keyword given twice, global pax
// headers, GNU long names beside a pax path, a ustar prefix field in a
// non-ustar header, unknown member types, malformed numbers (which Python
// takes as the end of the archive). TarHeaderChecker refuses all of these,
// so that every header it accepts names one member the same way for both;
// it then queues the name and size each member has, and the walk checks
// that libarchive reports exactly those.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace condaguard::detail {

// A member name as it may appear in a reason: quoted, control characters
// escaped (a reason is one line), very long names shortened.
std::string member_name(std::string_view raw);

// Largest pax extended header or GNU long name/link record accepted.
inline constexpr std::uint64_t max_tar_extension_bytes = 64 * 1024;

// A member as the header stream gives it.
struct CheckedMember {
    std::string name;  // as written: pax path, else GNU long name, else ustar prefix/name
    std::uint64_t size = 0;
};

// Fed the decompressed bytes of one tar in order, in chunks of any size.
// Looks only at headers; member data is skipped by count. Throws
// CorruptPackage (reasons prefixed by `where`) at the first header that
// could mean two things.
class TarHeaderChecker {
public:
    explicit TarHeaderChecker(std::string where) : where_(std::move(where)) {}

    void feed(const unsigned char* data, std::size_t n);

    // The next member the header stream gave, in order; nullopt when none
    // is queued (libarchive is never ahead of the bytes fed here).
    std::optional<CheckedMember> next_member();

    // Refuses a stream that ended inside a member or its extension headers
    // (called when libarchive has reached the end).
    void finish() const;

private:
    enum class State { Header, Extension, Data, Ended };

    void header_block();
    void extension_done();
    void parse_pax(std::string_view records);
    [[noreturn]] void fail(const std::string& what) const;

    std::string where_;
    State state_ = State::Header;
    std::uint64_t offset_ = 0;        // stream offset of the block being collected
    std::string block_;               // a header block or an extension's blocks, being collected
    std::uint64_t want_ = 0;          // bytes block_ needs
    std::uint64_t skip_ = 0;          // member data (with padding) still to pass
    char ext_type_ = 0;               // 'x', 'L' or 'K' while collecting one
    std::uint64_t ext_size_ = 0;
    std::uint64_t ext_offset_ = 0;

    // What extension headers said about the member that follows them.
    struct Pending {
        bool pax = false;
        std::optional<std::string> path, linkpath, long_name, long_link;
        std::optional<std::uint64_t> size;
        std::set<std::string, std::less<>> keys;
        std::string problem;  // reported with the member's name once its header arrives
    };
    Pending pending_;
    bool any_extension_ = false;
    std::deque<CheckedMember> members_;
};

}  // namespace condaguard::detail
