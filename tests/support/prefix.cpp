#include "prefix.hpp"

#include "packages.hpp"

#include <condaguard/package/archive.hpp>
#include <condaguard/package/extract.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/trust/digest.hpp>
#include <condaguard/trust/key_name.hpp>
#include <condaguard/trust/signer.hpp>

#include <cstdio>
#include <stdexcept>
#include <unistd.h>

namespace condaguard::test {

namespace {

// conda's binary_replace (conda/core/portability.py), written afresh here.
std::string binary_replace(const std::string& data, const std::string& search, const std::string& replacement) {
    std::string out;
    std::size_t pos = 0;
    for (std::size_t hit; (hit = data.find(search, pos)) != std::string::npos;) {
        const std::size_t nul = data.find('\0', hit + search.size());
        if (nul == std::string::npos) break;
        out.append(data, pos, hit - pos);
        std::string match = data.substr(hit, nul + 1 - hit);
        std::size_t n = 0;
        for (std::size_t i = 0; (i = match.find(search, i)) != std::string::npos; i += replacement.size(), ++n)
            match.replace(i, search.size(), replacement);
        out += match;
        out.append((search.size() - replacement.size()) * n, '\0');
        pos = nul + 1;
    }
    out.append(data, pos, std::string::npos);
    if (out.size() != data.size()) throw std::logic_error("binary_replace changed the length");
    return out;
}

std::string text_replace(std::string data, const std::string& search, const std::string& replacement) {
    for (std::size_t i = 0; (i = data.find(search, i)) != std::string::npos; i += replacement.size())
        data.replace(i, search.size(), replacement);
    return data;
}

std::string mode_field(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%07o", static_cast<unsigned>(mode & 07777));
    return std::string(buf, 7) + '\0';
}

}  // namespace

std::string long_placeholder() {
    std::string p = "/home/conda/feedstock_root/build_artifacts/demo_1700000000/_h_env";
    while (p.size() < 255) p += "_placehold";
    p.resize(255);
    return p;
}

EnvPackage typical_package(const std::string& name) {
    EnvPackage p{.name = name};
    p.files["lib/lib" + name + ".so.1"] = EnvFile{.data = "ELF\x01 library " + name + "\n"};
    p.files["lib/lib" + name + ".so"] = EnvFile{.data = "lib" + name + ".so.1", .symlink = true};
    p.files["bin/" + name] = EnvFile{.data = "#!/bin/sh\necho " + name + "\n", .mode = 0755};
    p.files["etc/" + name + ".conf"] =
        EnvFile{.data = "prefix=" + long_placeholder() + "\nlib=" + long_placeholder() + "/lib\n", .has_prefix = true};
    p.files["lib/lib" + name + ".a"] = EnvFile{.data = std::string("head\0", 5) + long_placeholder() + "/share/" + name +
                                                     std::string("\0tail\0", 6),
                                             .has_prefix = true,
                                             .binary = true};
    p.files["share/" + name + "/data.txt"] = EnvFile{.data = "some data for " + name + "\n"};
    return p;
}

TestEnv::TestEnv() : temp_(std::in_place) { init(temp_->path()); }

TestEnv::TestEnv(const stdfs::path& root) { init(root); }

void TestEnv::init(const stdfs::path& root) {
    prefix_ = root / "env";
    pkgs_ = root / "pkgs";
    stdfs::create_directories(prefix_ / "conda-meta");
    stdfs::create_directories(pkgs_);
    write_file(prefix_ / "conda-meta" / "history", "==> 2026-01-01 00:00:00 <==\n");
    write_file(pkgs_ / "urls.txt", "");
    key_ = &keys_.add("tester");
}

void TestEnv::install(const EnvPackage& p) {
    // 1. The archive.
    nlohmann::json index{{"name", p.name}, {"version", p.version}, {"build", p.build}, {"build_number", 0},
                         {"depends", nlohmann::json::array()}, {"subdir", p.subdir}, {"license", "MIT"},
                         {"timestamp", 1700000000000}};
    nlohmann::json paths = nlohmann::json::array();
    std::string pkg_tar;
    std::string files_list;
    for (const auto& [path, f] : p.files) {
        nlohmann::json e{{"_path", path}};
        if (f.symlink) {
            e["path_type"] = "softlink";
            e["sha256"] = to_hex(sha256_bytes(p.files.at(path.substr(0, path.rfind('/') + 1) + f.data).data));
            e["size_in_bytes"] = p.files.at(path.substr(0, path.rfind('/') + 1) + f.data).data.size();
            pkg_tar += tar_member(path, "", '2', TarHeaderExtras{.link = f.data, .raw = {{100, mode_field(0777)}}});
        } else {
            e["path_type"] = "hardlink";
            e["sha256"] = to_hex(sha256_bytes(f.data));
            e["size_in_bytes"] = f.data.size();
            if (f.has_prefix) {
                e["prefix_placeholder"] = long_placeholder();
                e["file_mode"] = f.binary ? "binary" : "text";
            }
            pkg_tar += tar_member(path, f.data, '0', TarHeaderExtras{.raw = {{100, mode_field(f.mode)}}});
        }
        paths.push_back(e);
        files_list += path + "\n";
    }
    pkg_tar += tar_end();
    const std::string info_tar = tar_member("info/index.json", index.dump(2)) +
                                 tar_member("info/paths.json", nlohmann::json{{"paths", paths}, {"paths_version", 1}}.dump(2)) +
                                 tar_member("info/files", files_list) + tar_end();
    const stdfs::path archive = build_raw_package(pkgs_, p.stem(), PackageFormat::Conda, info_tar, pkg_tar);
    sign_file(archive, KeyName("tester"), *key_);
    const std::string url = "https://conda.example.org/demo/" + p.subdir + "/" + p.fn();
    write_file(pkgs_ / "urls.txt", read_file(pkgs_ / "urls.txt") + url + "\n");

    // 2. Extracted, as conda's cache holds it.
    fs::OpenedFile a = fs::open_untrusted(archive);
    const PackageName name{.name = p.name, .version = p.version, .build = p.build, .format = PackageFormat::Conda};
    const PackageScan scan = scan_package(a.fd.get(), name);
    stdfs::create_directories(pkgs_ / p.stem());
    const fs::Fd dest = fs::open_dir(pkgs_ / p.stem());
    if (::lseek(a.fd.get(), 0, SEEK_SET) != 0) throw std::runtime_error("lseek");
    extract_package(a.fd.get(), name, TrustedRecord{.size = scan.size, .sha256 = scan.sha256}, dest.get());

    // 3. Linked into the prefix, and the record.
    nlohmann::json record_paths = nlohmann::json::array();
    nlohmann::json files = nlohmann::json::array();
    const std::string prefix_str = prefix_.string();
    for (std::size_t i = 0; i < paths.size(); ++i) {
        nlohmann::json e = paths[i];
        const std::string path = e["_path"];
        const EnvFile& f = p.files.at(path);
        const stdfs::path target = prefix_ / path;
        stdfs::create_directories(target.parent_path());
        if (f.symlink) {
            stdfs::create_symlink(f.data, target);
        } else if (f.has_prefix) {
            const std::string data = f.binary ? binary_replace(f.data, long_placeholder(), prefix_str)
                                              : text_replace(f.data, long_placeholder(), prefix_str);
            write_file(target, data, f.mode);
            stdfs::permissions(target, static_cast<stdfs::perms>(f.mode));
            e["sha256_in_prefix"] = to_hex(sha256_bytes(data));
        } else {
            stdfs::create_hard_link(pkgs_ / p.stem() / path, target);
            e["sha256_in_prefix"] = e["sha256"];
        }
        record_paths.push_back(e);
        files.push_back(path);
    }
    nlohmann::json record = index;
    record["channel"] = "https://conda.example.org/demo/" + p.subdir;
    record["fn"] = p.fn();
    record["url"] = url;
    record["md5"] = to_hex(scan.md5);
    record["sha256"] = to_hex(scan.sha256);
    record["size"] = scan.size;
    record["constrains"] = nlohmann::json::array();
    record["requested_spec"] = p.name;
    record["files"] = files;
    record["paths_data"] = nlohmann::json{{"paths", record_paths}, {"paths_version", 1}};
    record["link"] = nlohmann::json{{"source", (pkgs_ / p.stem()).string()}, {"type", 1}};
    record["extracted_package_dir"] = (pkgs_ / p.stem()).string();
    record["package_tarball_full_path"] = archive.string();
    write_record(p, record);
}

nlohmann::json TestEnv::read_record(const EnvPackage& p) const { return nlohmann::json::parse(read_file(record_path(p))); }

void TestEnv::write_record(const EnvPackage& p, const nlohmann::json& record) const {
    write_file(record_path(p), record.dump(2) + "\n");
}

}  // namespace condaguard::test
