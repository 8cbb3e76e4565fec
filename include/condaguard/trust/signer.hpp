// Signing files: FILE.sig beside FILE, as conda-sign writes it.
#pragma once

#include <condaguard/trust/key_name.hpp>
#include <condaguard/trust/keys.hpp>

#include <filesystem>
#include <string>

namespace condaguard {

struct SignedFile {
    std::filesystem::path sig_path;
    std::string fingerprint;
};

// Hashes `file` as it is read, signs the digest and writes `file + ".sig"`
// atomically (temporary file, fsync, rename).
SignedFile sign_file(const std::filesystem::path& file, const KeyName& name, const PrivateKey& key);

}  // namespace condaguard
