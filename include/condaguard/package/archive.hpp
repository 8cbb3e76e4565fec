// Conda package archives (.tar.bz2 and .conda), read once, front to back:
// every byte is hashed as it passes (md5, sha256, size) and info/index.json
// is pulled out on the way. Nothing is extracted to disk.
//
// Bounded work: where a trusted record (a signed index's size and sha256)
// exists, scan_trusted_package reads at most size + 1 raw bytes and
// decompresses nothing unless they match. Where none exists (indexing
// uploads), ScanLimits caps what decompression may cost. Every member path
// is normalised; two members with one path, an absolute path or a ".."
// segment are refused.
#pragma once

#include <condaguard/package/name.hpp>
#include <condaguard/trust/digest.hpp>
#include <condaguard/trust/verdict.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace condaguard {

inline constexpr std::size_t max_index_json_bytes = 1 << 20;

// Defaults of ScanLimits (conda-guard index --max-...).
inline constexpr std::uint64_t default_max_unpacked_bytes = std::uint64_t{8} << 30;  // 8 GiB
inline constexpr std::uint64_t default_max_ratio = 200;
inline constexpr std::uint64_t default_max_info_bytes = std::uint64_t{16} << 20;  // 16 MiB
inline constexpr std::uint64_t default_max_members = 200000;
// The ratio is not judged until this much has been unpacked: a small package
// that compresses well is no bomb.
inline constexpr std::uint64_t ratio_floor_bytes = std::uint64_t{1} << 20;

// Caps on decompression. Unpacked bytes are counted as libarchive hands them
// out, at every level (the outer zip's members and the tars inside), and
// checked during the walk, so a bomb stops at the cap.
struct ScanLimits {
    std::uint64_t max_unpacked_bytes = default_max_unpacked_bytes;
    // Unpacked bytes per byte of the file, judged past ratio_floor_bytes.
    std::uint64_t max_ratio = default_max_ratio;
    // Any one member under info/ (info/index.json has its own 1 MiB cap).
    std::uint64_t max_info_bytes = default_max_info_bytes;
    // Members of every archive level together (zip members and tar members).
    std::uint64_t max_members = default_max_members;
};

using Md5Digest = std::array<unsigned char, 16>;

struct PackageScan {
    std::uint64_t size = 0;
    Sha256Digest sha256{};
    Md5Digest md5{};
    // info/index.json parsed, when the archive has one.
    std::optional<nlohmann::json> index_json;
};

// A package archive that cannot be read (corrupt, truncated, not a conda
// package, over a ScanLimits cap): INVALID. Its reason never names the
// package file itself (callers report the path beside it); it names members.
class CorruptPackage : public VerdictError {
public:
    explicit CorruptPackage(const std::string& reason) : VerdictError(Verdict::Invalid, reason) {}
};

// Reads the archive from `fd` to its end, decompressing every member, under
// `limits`. Throws CorruptPackage when the archive is damaged, breaks a cap,
// holds a duplicate or unsafe member path, or its info/index.json is not a
// JSON object; std::system_error on read errors.
PackageScan scan_package(int fd, const PackageName& name, const ScanLimits& limits = {});

// What a signed index says about a package's bytes.
struct TrustedRecord {
    std::uint64_t size = 0;
    Sha256Digest sha256{};
    std::optional<Md5Digest> md5;
};

// The record an index entry describes, from its hex digests (either case;
// an empty md5 is none). nullopt when a digest is not hex of its length.
std::optional<TrustedRecord> trusted_record_from_hex(std::uint64_t size, std::string_view sha256_hex,
                                                     std::string_view md5_hex);

// Trusted record first: hashes the raw bytes of `fd` (which must stand at
// the file's start, as a freshly opened one does), reading at most
// record.size + 1 of them, and throws VerdictError(Invalid) when the file is
// longer or shorter or a digest differs. Only then is the same
// descriptor rewound and the archive scanned as scan_package does (under
// `limits`); bytes that change in between are refused too.
PackageScan scan_trusted_package(int fd, const PackageName& name, const TrustedRecord& record,
                                 const ScanLimits& limits = {});

// Why index.json disagrees with the file name (name, version, build), or
// with `subdir` when it names one; nullopt when they agree.
std::optional<std::string> identity_mismatch(const nlohmann::json& index_json, const PackageName& name,
                                             std::string_view subdir);

}  // namespace condaguard
