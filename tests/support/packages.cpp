#include "packages.hpp"

#include "support.hpp"

#include <lib/archive/handles.hpp>

#include <condaguard/trust/digest.hpp>

#include <cstring>
#include <stdexcept>

namespace condaguard::test {

namespace {

void ok(archive* a, int rc, const char* what) {
    if (rc != ARCHIVE_OK) throw std::runtime_error(std::string("test package writer: ") + what + ": " + la::error_of(a));
}

la::Writer new_writer() {
    la::Writer a{archive_write_new()};
    if (!a) throw std::bad_alloc();
    return a;
}

// Output appended to `out`, the last block not padded.
void open_to_string(archive* a, std::string& out) {
    auto write = [](archive*, void* self, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(self)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
    };
    ok(a, archive_write_set_bytes_in_last_block(a, 1), "bytes_in_last_block");
    ok(a, archive_write_open2(a, &out, nullptr, write, nullptr, nullptr), "open");
}

void add_member(archive* a, const std::string& path, const std::string& data, int mode = 0644) {
    la::Entry e{archive_entry_new()};
    if (!e) throw std::bad_alloc();
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(e.get(), 1700000000, 0);  // fixed: packages are reproducible
    ok(a, archive_write_header(a, e.get()), "header");
    if (!data.empty() && archive_write_data(a, data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
        throw std::runtime_error("test package writer: short write");
}

// The bzip2 compression of `data`, as one stream.
std::string bzip2_bytes(const std::string& data) {
    std::string out;
    la::Writer a = new_writer();
    ok(a.get(), archive_write_set_format_raw(a.get()), "raw");
    ok(a.get(), archive_write_add_filter(a.get(), ARCHIVE_FILTER_BZIP2), "bzip2");
    open_to_string(a.get(), out);
    add_member(a.get(), "data", data);
    ok(a.get(), archive_write_close(a.get()), "close");
    return out;
}

}  // namespace

std::string tar_bytes(const RawMembers& members, Compression compression) {
    std::string out;
    la::Writer a = new_writer();
    ok(a.get(), archive_write_set_format_pax_restricted(a.get()), "format");
    switch (compression) {
    case Compression::None: break;
    case Compression::Bzip2: ok(a.get(), archive_write_add_filter(a.get(), ARCHIVE_FILTER_BZIP2), "bzip2"); break;
    case Compression::Zstd: ok(a.get(), archive_write_add_filter(a.get(), ARCHIVE_FILTER_ZSTD), "zstd"); break;
    }
    open_to_string(a.get(), out);
    for (const auto& m : members) add_member(a.get(), m.path, m.data, m.path.starts_with("bin/") ? 0755 : 0644);
    ok(a.get(), archive_write_close(a.get()), "close");
    return out;
}

std::string zip_bytes(const RawMembers& members) {
    std::string out;
    la::Writer z = new_writer();
    ok(z.get(), archive_write_set_format_zip(z.get()), "zip");
    ok(z.get(), archive_write_set_format_option(z.get(), "zip", "compression", "store"), "store");
    open_to_string(z.get(), out);
    for (const auto& m : members) add_member(z.get(), m.path, m.data);
    ok(z.get(), archive_write_close(z.get()), "close");
    return out;
}

std::string bzip2_bomb_tar(std::uint64_t unpacked_mib) {
    constexpr std::uint64_t mib = 1 << 20;
    if (unpacked_mib == 0) throw std::invalid_argument("bzip2_bomb_tar: at least 1 MiB");
    // The header, then unpacked_mib MiB of zeros: the member's data and, in
    // its last 1024 bytes, the two zero blocks that end a tar.
    std::string out = bzip2_bytes(tar_header("bomb", '0', unpacked_mib * mib - 1024));
    const std::string zeros_stream = bzip2_bytes(std::string(mib, '\0'));
    for (std::uint64_t i = 0; i < unpacked_mib; ++i) out += zeros_stream;
    return out;
}

std::string tar_header(const std::string& name, char type, std::uint64_t size, const TarHeaderExtras& extras) {
    std::string h(512, '\0');
    auto put = [&](std::size_t off, const std::string& s) { std::memcpy(h.data() + off, s.data(), s.size()); };
    put(0, name.substr(0, 100));
    put(100, "0000644");
    put(108, "0000000");
    put(116, "0000000");
    char num[16];
    std::snprintf(num, sizeof num, "%011llo", static_cast<unsigned long long>(size));
    put(124, num);
    put(136, "15000000000");
    h[156] = type;
    put(157, extras.link.substr(0, 100));
    put(257, extras.gnu_magic ? std::string("ustar  \0", 8) : std::string("ustar\0" "00", 8));
    put(345, extras.prefix.substr(0, 155));
    for (const auto& [off, bytes] : extras.raw) put(off, bytes);
    std::memset(h.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(num, sizeof num, "%06o", sum);
    put(148, std::string(num, 7));  // six digits and a NUL, then the space already there
    return h;
}

namespace {

std::string padded(std::string data) {
    data.resize((data.size() + 511) / 512 * 512, '\0');
    return data;
}

}  // namespace

std::string tar_member(const std::string& name, const std::string& data, char type, const TarHeaderExtras& extras) {
    return tar_header(name, type, data.size(), extras) + padded(data);
}

std::string pax_record(const std::string& key, const std::string& value) {
    const std::string body = " " + key + "=" + value + "\n";
    std::size_t len = body.size() + 1;
    while (std::to_string(len).size() + body.size() != len) ++len;
    return std::to_string(len) + body;
}

std::string pax_header(const std::vector<std::pair<std::string, std::string>>& records, char type) {
    std::string data;
    for (const auto& [k, v] : records) data += pax_record(k, v);
    return tar_member("././@PaxHeader", data, type);
}

std::string gnu_long(const std::string& name, char type) { return tar_member("././@LongLink", name + '\0', type); }

std::string tar_end() { return std::string(1024, '\0'); }

std::string compress(const std::string& data, Compression compression) {
    if (compression == Compression::None) return data;
    std::string out;
    la::Writer a = new_writer();
    ok(a.get(), archive_write_set_format_raw(a.get()), "raw");
    ok(a.get(), archive_write_add_filter(a.get(), compression == Compression::Bzip2 ? ARCHIVE_FILTER_BZIP2
                                                                                      : ARCHIVE_FILTER_ZSTD),
       "filter");
    open_to_string(a.get(), out);
    add_member(a.get(), "data", data);
    ok(a.get(), archive_write_close(a.get()), "close");
    return out;
}

std::filesystem::path build_raw_package(const std::filesystem::path& dir, const std::string& stem,
                                        PackageFormat format, const std::string& info_tar,
                                        const std::string& pkg_tar) {
    std::filesystem::create_directories(dir);
    if (format == PackageFormat::TarBz2) {
        const auto out = dir / (stem + ".tar.bz2");
        write_file(out, compress(info_tar, Compression::Bzip2));
        return out;
    }
    const auto out = dir / (stem + ".conda");
    write_file(out, zip_bytes({{"metadata.json", "{\"conda_pkg_format_version\": 2}"},
                               {"pkg-" + stem + ".tar.zst", compress(pkg_tar, Compression::Zstd)},
                               {"info-" + stem + ".tar.zst", compress(info_tar, Compression::Zstd)}}));
    return out;
}

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
    RawMembers info;
    if (s.with_index_json) info.push_back({"info/index.json", index.dump(2) + "\n"});
    info.push_back({"info/paths.json", nlohmann::json{{"paths", paths}, {"paths_version", 1}}.dump(2) + "\n"});
    info.push_back({"info/files", files_list});
    info.insert(info.end(), s.extra_info_members.begin(), s.extra_info_members.end());
    RawMembers payload;
    for (const auto& [p, d] : s.files) payload.push_back({p, d});
    payload.insert(payload.end(), s.extra_pkg_members.begin(), s.extra_pkg_members.end());

    std::filesystem::create_directories(dir);
    const auto out = dir / s.file_name();
    std::string bytes;
    if (s.format == PackageFormat::TarBz2) {
        RawMembers all = info;
        all.insert(all.end(), payload.begin(), payload.end());
        bytes = tar_bytes(all, Compression::Bzip2);
    } else {
        const std::string stem = s.name + "-" + s.version + "-" + s.build;
        RawMembers outer{{"metadata.json", "{\"conda_pkg_format_version\": 2}"},
                         {"pkg-" + stem + ".tar.zst", tar_bytes(payload, Compression::Zstd)},
                         {"info-" + stem + ".tar.zst", tar_bytes(info, Compression::Zstd)}};
        outer.insert(outer.end(), s.extra_zip_members.begin(), s.extra_zip_members.end());
        bytes = zip_bytes(outer);
    }
    write_file(out, bytes);
    return out;
}

std::string Noise::bytes(std::size_t len) {
    std::string out(len, '\0');
    for (auto& c : out) {
        x_ ^= x_ << 13;
        x_ ^= x_ >> 7;
        x_ ^= x_ << 17;
        c = static_cast<char>(x_);
    }
    return out;
}

}  // namespace condaguard::test
