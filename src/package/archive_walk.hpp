// Internal to src/package: the one walk over a package archive that both
// scanning (archive.cpp) and extraction (extract.cpp) use, so an extracted
// tree has passed exactly the checks a scan applies: the tar header checker,
// the member budget, path normalisation and the duplicate-path refusal, the
// .conda zip's member names and central directory, and the hashes of the
// raw bytes.
#pragma once

#include <condaguard/package/archive.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace condaguard::detail {

// The data of the member being visited, in order. Every chunk is counted
// against the walk's limits before it is handed out.
class MemberData {
public:
    virtual ~MemberData() = default;
    // The next chunk of the member's data; empty at its end.
    virtual std::span<const unsigned char> next() = 0;
};

// Given every tree member (the members of the tar, or of both inner tars of
// a .conda) once its header has passed the checks. `path` is normalised
// ("" is the root directory), `raw` as written (for messages), `where` the
// reason prefix of its tar ("" or "pkg-NAME.tar.zst: "). The sink must read
// `data` to its end (or throw).
class MemberSink {
public:
    virtual ~MemberSink() = default;
    virtual void member(archive_entry* e, const std::string& path, const std::string& raw, const std::string& where,
                        MemberData& data) = 0;
};

// A member path as extraction would use it: leading "./", repeated '/' and
// "." segments dropped, no trailing '/' ("" is the root). Throws
// CorruptPackage for an absolute path or a ".." segment.
std::string normalised_member_path(std::string_view raw, const std::string& where);

enum class Digests { Sha256AndMd5, Sha256Only };

// Walks the archive in `fd` from its start (the descriptor is rewound),
// reading at most max_bytes + 1 raw bytes when max_bytes is set, and hands
// every tree member to `sink`. Returns the raw bytes' size and digests
// (index_json stays empty: the sink sees info/index.json like any member;
// with Digests::Sha256Only, md5 stays all zeros).
// Throws CorruptPackage as scan_package does.
PackageScan walk_package(int fd, const PackageName& name, const ScanLimits& limits,
                         std::optional<std::uint64_t> max_bytes, MemberSink& sink,
                         Digests digests = Digests::Sha256AndMd5);

}  // namespace condaguard::detail
