#include "packages.hpp"

#include "support.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <condaguard/trust/digest.hpp>

#include <memory>
#include <stdexcept>

namespace condaguard::test {

namespace {

struct WriteFree {
    void operator()(archive* a) const noexcept { archive_write_free(a); }
};
using Writer = std::unique_ptr<archive, WriteFree>;

void ok(archive* a, int rc, const char* what) {
    if (rc != ARCHIVE_OK) throw std::runtime_error(std::string("test package writer: ") + what + ": " +
                                                   (archive_error_string(a) ? archive_error_string(a) : "?"));
}

void add_member(archive* a, const std::string& path, const std::string& data, int mode = 0644) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(e.get(), 1700000000, 0);  // fixed: packages are reproducible
    ok(a, archive_write_header(a, e.get()), "header");
    if (!data.empty() && archive_write_data(a, data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
        throw std::runtime_error("test package writer: short write");
}

using Members = std::vector<std::pair<std::string, std::string>>;

// A tar of `members`, compressed with `filter` (ARCHIVE_FILTER_*), in memory.
std::string tar_bytes(const Members& members, int filter) {
    Writer a{archive_write_new()};
    ok(a.get(), archive_write_set_format_pax_restricted(a.get()), "format");
    ok(a.get(), archive_write_add_filter(a.get(), filter), "filter");
    std::vector<char> buf(16 << 20);
    size_t used = 0;
    ok(a.get(), archive_write_open_memory(a.get(), buf.data(), buf.size(), &used), "open");
    for (const auto& [p, d] : members) add_member(a.get(), p, d, p.starts_with("bin/") ? 0755 : 0644);
    ok(a.get(), archive_write_close(a.get()), "close");
    return std::string(buf.data(), used);
}

}  // namespace

std::string PackageSpec::file_name() const {
    return name + "-" + version + "-" + build + (format == PackageFormat::Conda ? ".conda" : ".tar.bz2");
}

std::filesystem::path build_package(const std::filesystem::path& dir, const PackageSpec& s) {
    nlohmann::json index{{"name", s.name},     {"version", s.version}, {"build", s.build},
                         {"build_number", 0},  {"depends", s.depends}, {"subdir", s.subdir},
                         {"license", "BSD-3-Clause"}, {"timestamp", 1700000000000}};
    if (s.subdir == "noarch") index["noarch"] = "generic";
    for (const auto& [k, v] : s.index_overrides.items()) {
        if (v.is_null())
            index.erase(k);
        else
            index[k] = v;
    }
    nlohmann::json paths = nlohmann::json::array();
    std::string files_list;
    for (const auto& [p, d] : s.files) {
        paths.push_back({{"_path", p}, {"path_type", "hardlink"}, {"sha256", to_hex(sha256_bytes(d))},
                         {"size_in_bytes", d.size()}});
        files_list += p + "\n";
    }
    Members info;
    if (s.with_index_json) info.emplace_back("info/index.json", index.dump(2) + "\n");
    info.emplace_back("info/paths.json", nlohmann::json{{"paths", paths}, {"paths_version", 1}}.dump(2) + "\n");
    info.emplace_back("info/files", files_list);
    Members payload(s.files.begin(), s.files.end());

    std::filesystem::create_directories(dir);
    const auto out = dir / s.file_name();
    std::string bytes;
    if (s.format == PackageFormat::TarBz2) {
        Members all = info;
        all.insert(all.end(), payload.begin(), payload.end());
        bytes = tar_bytes(all, ARCHIVE_FILTER_BZIP2);
    } else {
        const std::string stem = s.name + "-" + s.version + "-" + s.build;
        Writer z{archive_write_new()};
        ok(z.get(), archive_write_set_format_zip(z.get()), "zip");
        ok(z.get(), archive_write_set_format_option(z.get(), "zip", "compression", "store"), "store");
        std::vector<char> buf(32 << 20);
        size_t used = 0;
        ok(z.get(), archive_write_open_memory(z.get(), buf.data(), buf.size(), &used), "open");
        add_member(z.get(), "metadata.json", "{\"conda_pkg_format_version\": 2}");
        add_member(z.get(), "pkg-" + stem + ".tar.zst", tar_bytes(payload, ARCHIVE_FILTER_ZSTD));
        add_member(z.get(), "info-" + stem + ".tar.zst", tar_bytes(info, ARCHIVE_FILTER_ZSTD));
        ok(z.get(), archive_write_close(z.get()), "close");
        bytes.assign(buf.data(), used);
    }
    write_file(out, bytes);
    return out;
}

}  // namespace condaguard::test
