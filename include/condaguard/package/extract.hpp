// Extracting a verified package archive into an empty directory.
//
// The archive is read from the descriptor the caller verified (rewound,
// never reopened by path), through the same walk as scan_package (tar
// header checks, normalised paths, duplicates refused, limits), and its
// raw bytes are hashed again on the way: bytes that differ from the
// verified record are refused. Members are written by this code, not by
// archive_write_disk: every file, directory, symbolic link and hard link is
// made relative to a directory descriptor, parents opened with O_NOFOLLOW,
// files created with O_EXCL|O_NOFOLLOW, so nothing is written outside the
// destination whatever the archive holds, and the process's working
// directory is never changed (archive_write_disk works on path strings,
// resolved again for every member, and chdir()s the whole process for
// paths longer than PATH_MAX).
//
// Refused (CorruptPackage, INVALID, the reason naming the member):
// absolute paths and ".." segments; two members with one path; device
// nodes, FIFOs and sockets; setuid, setgid and sticky bits; a member whose
// path passes through a symbolic link member; a symbolic link whose target
// is absolute or resolves outside the tree (following the archive's other
// symbolic links); a hard link to anything but an earlier regular member;
// paths deeper than max_extract_depth; more members or bytes than
// ExtractLimits allows.
//
// Modes: files keep their mode without group and other write (mode &
// 0755); directories get mode & 0755 plus owner rwx (so the cache can
// always be cleaned); owners are never restored. Modification times are
// restored (files, directories, symbolic links).
//
// On a refusal or any error, the destination holds whatever was written so
// far: removing it is the caller's job (install/pkgs_dir.hpp's Staging does).
#pragma once

#include <condaguard/package/archive.hpp>
#include <condaguard/package/name.hpp>

#include <cstdint>

namespace condaguard {

// Deepest member path accepted, in segments (conda packages need a few dozen).
inline constexpr std::size_t max_extract_depth = 128;

struct ExtractLimits {
    // Bytes written (member data of every level counted as it unpacks).
    std::uint64_t max_unpacked_bytes = default_max_unpacked_bytes;
    // Members of every archive level together.
    std::uint64_t max_members = default_max_members;
};

// Extracts the archive in `archive_fd` (whose bytes the caller verified
// against `verified`: at most verified.size + 1 bytes are read, and a size
// or sha256 that differs now is refused as INVALID "changed while being
// read") into the empty directory `dest_dirfd`. A .tar.bz2 is its one tar;
// a .conda is its pkg-STEM.tar.zst and info-STEM.tar.zst, in the order the
// zip holds them, into one tree. Returns the bytes' size and sha256 (md5 is
// not computed, and stays all zeros: sha256 is the check).
// Throws CorruptPackage / VerdictError(Invalid) for the refusals above,
// std::system_error for I/O errors (a destination that is not empty is one:
// EEXIST).
PackageScan extract_package(int archive_fd, const PackageName& name, const TrustedRecord& verified, int dest_dirfd,
                            const ExtractLimits& limits = {});

}  // namespace condaguard
