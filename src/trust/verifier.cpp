#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verifier.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/parallel.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <fcntl.h>
#include <sys/stat.h>

namespace condaguard {

namespace {

std::filesystem::path sig_path_for(const std::filesystem::path& file) {
    std::filesystem::path p = file;
    p += ".sig";
    return p;
}

}  // namespace

const PublicKey& Verifier::key(const KeyName& name) {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(name.str());
    if (it == cache_.end()) {
        try {
            it = cache_.emplace(name.str(), keys_.load_public(name)).first;
        } catch (const VerdictError& e) {
            it = cache_.emplace(name.str(), e).first;
        }
    }
    if (auto* err = std::get_if<VerdictError>(&it->second)) throw *err;
    return std::get<PublicKey>(it->second);
}

const PublicKey& Verifier::key_for(const SigFile& sig, Result& r) {
    r.key = sig.key.str();
    const PublicKey& pub = key(sig.key);
    r.fingerprint = pub.fingerprint();
    return pub;
}

void Verifier::judge(const Sha256Digest& digest, const SigFile& sig, const PublicKey& pub, Result& r) const {
    const std::string& name = sig.key.str();
    if (sig.signature.size() != pub.signature_size()) {
        r.verdict = Verdict::Invalid;
        r.reason = fmt::format("signature is {} bytes, key {} makes {}-byte signatures", sig.signature.size(), name,
                               pub.signature_size());
    } else if (!pub.verify_digest(digest, sig.signature)) {
        r.verdict = Verdict::Invalid;
        r.reason = fmt::format("digest does not match signature (key {}, {})", name, pub.fingerprint());
    } else if (!allowed_.empty() && std::find(allowed_.begin(), allowed_.end(), name) == allowed_.end()) {
        r.verdict = Verdict::UntrustedKey;
        r.reason = fmt::format("good signature by key {} ({}), which is not allowed here (allowed: {})", name,
                               pub.fingerprint(), fmt::join(allowed_, ", "));
    } else {
        r.verdict = Verdict::Valid;
        r.reason = fmt::format("signed by key {} ({})", name, pub.fingerprint());
    }
}

Result Verifier::verify_stream(int fd, const std::filesystem::path& sig_path, const std::string& display) {
    Result r;
    r.path = display;
    guarded(r, [&] {
        // Cheap checks first: the signature file and the key it names. The
        // file's bytes are then read exactly once and checked on that digest.
        const SigFile sig = read_sig_file(sig_path);
        const PublicKey& pub = key_for(sig, r);
        judge(hash_fd(fd).sha256, sig, pub, r);
    });
    return r;
}

Result Verifier::verify_digest_at(const Sha256Digest& digest, int dirfd, const std::string& sig_name,
                                  const std::filesystem::path& sig_display, const std::string& display) {
    Result r;
    r.path = display;
    guarded(r, [&] {
        const SigFile sig = read_sig_file_at(dirfd, sig_name, sig_display);
        judge(digest, sig, key_for(sig, r), r);
    });
    return r;
}

Result Verifier::verify_digest_sig(const Sha256Digest& digest, const SigFile& sig, const std::string& display) {
    Result r;
    r.path = display;
    guarded(r, [&] { judge(digest, sig, key_for(sig, r), r); });
    return r;
}

Result Verifier::verify_file(const std::filesystem::path& file) {
    Result r;
    r.path = file.string();
    guarded(r, [&] {
        const fs::OpenedFile f = fs::open_untrusted(file);
        ::posix_fadvise(f.fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
        r = verify_stream(f.fd.get(), sig_path_for(file), file.string());
    });
    return r;
}

std::vector<Result> Verifier::verify_files(const std::vector<std::filesystem::path>& files, unsigned threads) {
    std::vector<Result> results(files.size());
    parallel_for(files.size(), threads, [&](std::size_t i) { results[i] = verify_file(files[i]); });
    return results;
}

}  // namespace condaguard
