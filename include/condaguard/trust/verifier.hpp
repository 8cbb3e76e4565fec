// Verifying files against their detached FILE.sig.
//
// Policy (written once here and once in conda-sign(1)): a file is VALID only
// when FILE.sig exists and parses, the key it names is a valid name whose
// KEYS/NAME.pub loads under the key policy, and the signature checks out on
// the SHA-256 of the file's bytes. Anything else is a failure verdict; there
// is no outcome in which a missing or unreadable signature counts as good.
#pragma once

#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verdict.hpp>

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

namespace condaguard {

class Verifier {
public:
    explicit Verifier(const KeyStore& keys) : keys_(keys) {}

    // Verifies `file` against `file + ".sig"`. Never throws: every failure,
    // including internal errors, becomes a non-VALID Result.
    Result verify_file(const std::filesystem::path& file);

    // Verifies bytes read once from `fd` (a file or a pipe) against `sig_path`.
    Result verify_stream(int fd, const std::filesystem::path& sig_path, const std::string& display);

    // Checks a digest computed elsewhere (while the bytes streamed past)
    // against the signature file `sig_name` inside the directory `dirfd`
    // (read_sig_file_at: never a path that could lead elsewhere); the key is
    // read here. `sig_display` names the signature file in reasons.
    Result verify_digest_at(const Sha256Digest& digest, int dirfd, const std::string& sig_name,
                            const std::filesystem::path& sig_display, const std::string& display);

    // Checks a digest computed elsewhere against a signature file already
    // read and parsed (a download's .sig, held by the caller).
    Result verify_digest_sig(const Sha256Digest& digest, const SigFile& sig, const std::string& display);

    // Only these key names are allowed; a good signature by another key is
    // UNTRUSTED_KEY. Empty (the default): any key in the keys directory.
    void allow_only(std::vector<std::string> names) { allowed_ = std::move(names); }

    // Verifies many files on up to `threads` threads (0: one per core).
    // Results come back in the order of `files`.
    std::vector<Result> verify_files(const std::vector<std::filesystem::path>& files, unsigned threads = 0);

private:
    const PublicKey& key(const KeyName& name);
    // The key `sig` names, loaded; notes both in `r`.
    const PublicKey& key_for(const SigFile& sig, Result& r);
    void judge(const Sha256Digest& digest, const SigFile& sig, const PublicKey& pub, Result& r) const;
    std::vector<std::string> allowed_;

    const KeyStore& keys_;
    // Keys loaded once per run; a failed load is remembered as its verdict.
    // std::map never moves its nodes, so references stay valid under the lock.
    std::mutex cache_mutex_;
    std::map<std::string, std::variant<PublicKey, VerdictError>> cache_;
};

}  // namespace condaguard
