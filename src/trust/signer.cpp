#include <condaguard/trust/signer.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/trust/digest.hpp>
#include <condaguard/trust/sigfile.hpp>

#include <fcntl.h>
#include <sys/stat.h>

namespace condaguard {

SignedFile sign_file(const std::filesystem::path& file, const KeyName& name, const PrivateKey& key) {
    const fs::OpenedFile f = fs::open_untrusted(file);
    const HashedStream hashed = hash_fd(f.fd.get());
    const auto sig = key.sign_digest(hashed.sha256);
    std::filesystem::path sig_path = file;
    sig_path += ".sig";
    fs::write_atomic(sig_path, format_sig_file(name, sig), 0644, false);
    return SignedFile{sig_path, key.public_key().fingerprint()};
}

}  // namespace condaguard
