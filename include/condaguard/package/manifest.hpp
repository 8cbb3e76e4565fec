// What a verified package archive holds, member by member, without writing
// anything to disk: for the audit of an installed environment, which checks
// each installed file against the archive it came from.
//
// The archive is read from the descriptor the caller verified, through the
// same walk as scan_package and extract_package (tar header checks,
// normalised paths, duplicates refused, limits), and its raw bytes are
// hashed again on the way: bytes that differ from the verified record are
// refused as INVALID "changed while being read".
#pragma once

#include <condaguard/package/archive.hpp>
#include <condaguard/package/name.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <sys/types.h>

namespace condaguard {

// info/ files larger than this are not kept (paths.json of the largest
// packages is a few MiB).
inline constexpr std::uint64_t max_manifest_info_bytes = std::uint64_t{64} << 20;

struct ManifestMember {
    enum class Kind { Regular, Symlink, Directory };
    Kind kind = Kind::Regular;
    mode_t mode = 0;     // permission bits as archived (a hard link member: its own header's)
    std::string target;  // Symlink: the link's text
};

struct PackageManifest {
    PackageScan scan;                                // size and digests of the raw bytes
    std::map<std::string, ManifestMember> members;   // by normalised path (info/ included)
    // The text of info/index.json, info/paths.json and info/link.json when the
    // archive has them (each at most max_manifest_info_bytes).
    std::map<std::string, std::string> info_files;
};

// Reads the archive in `archive_fd` (verified by the caller against
// `verified`: at most verified.size + 1 bytes are read; a size or sha256
// that differs now is INVALID). Throws CorruptPackage / VerdictError(Invalid)
// as extract_package does, std::system_error on read errors.
PackageManifest read_package_manifest(int archive_fd, const PackageName& name, const TrustedRecord& verified,
                                      const ScanLimits& limits = {});

}  // namespace condaguard
