// Builds conda environments for the audit tests the way conda lays them
// out (spec conda-formats §3 and §4): each package is written as a real
// .conda archive (tests/support/packages.hpp's raw tar pieces, so that it can
// hold symbolic links, modes and prefix placeholders), signed into a package
// directory (PKGS/FN, PKGS/FN.sig, urls.txt), extracted into PKGS/STEM by
// the library's extractor, and linked into PREFIX as conda links it: files
// hard-linked from PKGS/STEM, files with a prefix placeholder copied with
// the placeholder rewritten (text: every occurrence; binary: conda's
// NUL-padded C-string rewrite), symbolic links made anew. Then
// PREFIX/conda-meta/NAME-VERSION-BUILD.json is written as §4.1 shows.
#pragma once

#include "support.hpp"

#include <condaguard/trust/keys.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>

namespace condaguard::test {

// conda-build's long placeholder (255 characters), so binary rewrites fit.
std::string long_placeholder();

struct EnvFile {
    std::string data;            // file content, or a symbolic link's target when `symlink`
    mode_t mode = 0644;
    bool symlink = false;
    bool has_prefix = false;     // data holds long_placeholder(), rewritten at link time
    bool binary = false;         // file_mode binary (else text)
};

struct EnvPackage {
    std::string name = "pkg";
    std::string version = "1.0";
    std::string build = "0";
    std::string subdir = "linux-64";
    std::map<std::string, EnvFile> files;
    std::string fn() const { return name + "-" + version + "-" + build + ".conda"; }
    std::string stem() const { return name + "-" + version + "-" + build; }
};

// One of each, with NAME in every path: a plain file (share/NAME/data.txt),
// an executable (bin/NAME), a text file (etc/NAME.conf) and a binary file
// (lib/libNAME.a) with a prefix placeholder, a symbolic link (lib/libNAME.so
// to libNAME.so.1).
EnvPackage typical_package(const std::string& name = "demo");

class TestEnv {
public:
    // In a temporary directory, or below `root` (kept; for the benchmark).
    TestEnv();
    explicit TestEnv(const stdfs::path& root);
    const stdfs::path& prefix() const noexcept { return prefix_; }
    const stdfs::path& pkgs() const noexcept { return pkgs_; }
    stdfs::path keys_dir() const { return keys_.keys(); }
    // The key "tester" that signs the packages (and, in tests, indexes).
    const PrivateKey& key() const { return *key_; }
    // Builds, signs, extracts and links `p`, and writes its record.
    void install(const EnvPackage& p);
    stdfs::path record_path(const EnvPackage& p) const { return prefix_ / "conda-meta" / (p.stem() + ".json"); }
    nlohmann::json read_record(const EnvPackage& p) const;
    void write_record(const EnvPackage& p, const nlohmann::json& record) const;

private:
    void init(const stdfs::path& root);
    std::optional<TempDir> temp_;
    Keys keys_;
    const PrivateKey* key_ = nullptr;
    stdfs::path prefix_;
    stdfs::path pkgs_;
};

}  // namespace condaguard::test
