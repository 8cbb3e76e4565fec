#include <condaguard/package/manifest.hpp>

#include "archive_walk.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace condaguard {

namespace {

constexpr std::array<std::string_view, 3> kept_info_files{"info/index.json", "info/paths.json", "info/link.json"};

class ManifestSink final : public detail::MemberSink {
public:
    explicit ManifestSink(PackageManifest& out) : out_(out) {}

    void member(archive_entry* e, const std::string& path, const std::string& raw, const std::string& where,
                detail::MemberData& data) override {
        ManifestMember m{.mode = archive_entry_perm(e)};
        const char* hardlink = archive_entry_hardlink(e);
        if (hardlink != nullptr) {
            m.kind = ManifestMember::Kind::Regular;
        } else {
            switch (archive_entry_filetype(e)) {
            case AE_IFDIR: m.kind = ManifestMember::Kind::Directory; break;
            case AE_IFREG: m.kind = ManifestMember::Kind::Regular; break;
            case AE_IFLNK: {
                m.kind = ManifestMember::Kind::Symlink;
                const char* t = archive_entry_symlink(e);
                m.target = t != nullptr ? t : "";
                break;
            }
            default: throw CorruptPackage(fmt::format("{}{} is not a file, directory or link", where, raw));
            }
        }
        const bool keep = m.kind == ManifestMember::Kind::Regular && hardlink == nullptr &&
                          std::find(kept_info_files.begin(), kept_info_files.end(), path) != kept_info_files.end();
        std::string text;
        for (auto chunk = data.next(); !chunk.empty(); chunk = data.next()) {
            if (!keep) continue;
            if (text.size() + chunk.size() > max_manifest_info_bytes)
                throw CorruptPackage(fmt::format("{}{} is larger than {} bytes", where, raw, max_manifest_info_bytes));
            text.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        }
        if (keep) out_.info_files[path] = std::move(text);
        if (!path.empty()) out_.members[path] = std::move(m);
    }

private:
    PackageManifest& out_;
};

}  // namespace

PackageManifest read_package_manifest(int archive_fd, const PackageName& name, const TrustedRecord& verified,
                                      const ScanLimits& limits) {
    PackageManifest out;
    ManifestSink sink(out);
    out.scan = detail::walk_package(archive_fd, name, limits, verified.size, sink);
    if (out.scan.size != verified.size || out.scan.sha256 != verified.sha256)
        throw VerdictError(Verdict::Invalid, "changed while being read");
    return out;
}

}  // namespace condaguard
