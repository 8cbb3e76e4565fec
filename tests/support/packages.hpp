// Writes real conda packages for tests: .tar.bz2 (bzip2 tar) and .conda
// (stored zip of metadata.json, pkg-*.tar.zst and info-*.tar.zst), each with
// info/index.json, info/paths.json and info/files, via libarchive. Malicious
// packages add raw members (any name, duplicates kept) or are made whole
// from raw bytes (tar_bytes, zip_bytes, bzip2_bomb_tar).
#pragma once

#include <condaguard/package/archive.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace condaguard::test {

// One archive member exactly as written: its path is not cleaned up.
struct RawMember {
    std::string path;
    std::string data;
};
using RawMembers = std::vector<RawMember>;

struct PackageSpec {
    std::string name = "pkg";
    std::string version = "1.0";
    std::string build = "0";
    std::string subdir = "noarch";
    PackageFormat format = PackageFormat::Conda;
    std::map<std::string, std::string> files{{"bin/tool", "#!/bin/sh\necho tool\n"}};
    std::vector<std::string> depends;
    // Applied to info/index.json after the defaults; a null value removes a key.
    nlohmann::json index_overrides = nlohmann::json::object();
    bool with_index_json = true;
    // Written after the generated members, as given: into info-*.tar.zst,
    // pkg-*.tar.zst and the outer zip of a .conda; a .tar.bz2 has one tar,
    // which gets the info and pkg extras (and no zip ones).
    RawMembers extra_info_members;
    RawMembers extra_pkg_members;
    RawMembers extra_zip_members;

    std::string file_name() const;
};

// Writes the package into `dir` and returns its path.
std::filesystem::path build_package(const std::filesystem::path& dir, const PackageSpec& spec);

enum class Compression { None, Bzip2, Zstd };

// A pax tar of exactly `members`, in order, compressed as asked.
std::string tar_bytes(const RawMembers& members, Compression compression);
// A zip of exactly `members` (stored, as .conda files are).
std::string zip_bytes(const RawMembers& members);

// Raw tar bytes, for headers no tar writer would produce. Fields of
// tar_header beyond name, type and size, all optional.
struct TarHeaderExtras {
    std::string link;        // linkname field
    std::string prefix;      // ustar prefix field (offset 345)
    bool gnu_magic = false;  // "ustar  \0" (GNU) instead of "ustar\000" (POSIX)
    std::vector<std::pair<std::size_t, std::string>> raw;  // bytes written at offsets before the checksum
};
// One 512-byte header block, its checksum filled in.
std::string tar_header(const std::string& name, char type, std::uint64_t size, const TarHeaderExtras& extras = {});
// A header and `data`, padded to whole blocks.
std::string tar_member(const std::string& name, const std::string& data, char type = '0',
                       const TarHeaderExtras& extras = {});
// One pax record, "LEN KEY=VALUE\n".
std::string pax_record(const std::string& key, const std::string& value);
// A pax extended header (type 'x', or 'g' for a global one) of `records`, in order.
std::string pax_header(const std::vector<std::pair<std::string, std::string>>& records, char type = 'x');
// A GNU long name ('L') or long link ('K') record for the member after it.
std::string gnu_long(const std::string& name, char type = 'L');
// The two zero blocks that end a tar.
std::string tar_end();
// Bytes that do not compress away (xorshift64), for packages whose size
// must survive compression. Each call continues the sequence.
class Noise {
public:
    explicit Noise(std::uint64_t seed = 0x9e3779b97f4a7c15ULL) : x_(seed) {}
    std::string bytes(std::size_t len);

private:
    std::uint64_t x_;
};

// `data` compressed as one stream.
std::string compress(const std::string& data, Compression compression);
// A package made of raw (uncompressed) tars: a .conda gets `info_tar` and
// `pkg_tar` as its info-STEM.tar.zst and pkg-STEM.tar.zst; a .tar.bz2 is
// `info_tar` alone, bzip2-compressed (`pkg_tar` unused).
std::filesystem::path build_raw_package(const std::filesystem::path& dir, const std::string& stem,
                                        PackageFormat format, const std::string& info_tar,
                                        const std::string& pkg_tar = tar_end());

// A .tar.bz2 decompression bomb: one member of `unpacked_mib` MiB of zeros,
// made of concatenated bzip2 streams, so it is tiny and quick to build
// (about 50 bytes per MiB) while reading it through costs the full size.
std::string bzip2_bomb_tar(std::uint64_t unpacked_mib);

}  // namespace condaguard::test
