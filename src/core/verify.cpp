#include <condaguard/sigfile.hpp>
#include <condaguard/verify.hpp>

#include "fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>

namespace condaguard {

namespace {

std::filesystem::path sig_path_for(const std::filesystem::path& file) {
    std::filesystem::path p = file;
    p += ".sig";
    return p;
}

fs::Fd open_regular(const std::filesystem::path& file) {
    fs::Fd fd = fs::open_raw(file, O_RDONLY);
    if (!fd) throw fs::errno_error(file.string());
    const auto st = fs::fstat_or_throw(fd.get(), file.string()).st;
    if (!S_ISREG(st.st_mode)) throw std::runtime_error(file.string() + ": not a regular file");
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    return fd;
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

Result Verifier::verify_stream(int fd, const std::filesystem::path& sig_path, const std::string& display) {
    Result r;
    r.path = display;
    try {
        // Cheap checks first: the signature file and the key it names. The
        // file's bytes are then read exactly once and checked on that digest.
        SigFile sig = read_sig_file(sig_path);
        r.key = sig.key.str();
        const PublicKey& pub = key(sig.key);
        r.fingerprint = pub.fingerprint();
        const HashedStream hashed = hash_fd(fd);
        if (sig.signature.size() != pub.signature_size()) {
            r.verdict = Verdict::Invalid;
            r.reason = fmt::format("signature is {} bytes, key {} makes {}-byte signatures", sig.signature.size(),
                                   sig.key.str(), pub.signature_size());
        } else if (pub.verify_digest(hashed.sha256, sig.signature)) {
            r.verdict = Verdict::Valid;
            r.reason = fmt::format("signed by key {} ({})", sig.key.str(), pub.fingerprint());
        } else {
            r.verdict = Verdict::Invalid;
            r.reason = fmt::format("digest does not match signature (key {}, {})", sig.key.str(), pub.fingerprint());
        }
    } catch (const VerdictError& e) {
        r.verdict = e.verdict();
        r.reason = e.what();
    } catch (const std::exception& e) {
        r.verdict = Verdict::Error;
        r.reason = e.what();
    } catch (...) {
        r.verdict = Verdict::Error;
        r.reason = "unknown internal error";
    }
    return r;
}

Result Verifier::verify_file(const std::filesystem::path& file) {
    try {
        fs::Fd fd = open_regular(file);
        return verify_stream(fd.get(), sig_path_for(file), file.string());
    } catch (const std::exception& e) {
        Result r;
        r.path = file.string();
        r.verdict = Verdict::Error;
        r.reason = e.what();
        return r;
    }
}

std::vector<Result> Verifier::verify_files(const std::vector<std::filesystem::path>& files, unsigned threads) {
    std::vector<Result> results(files.size());
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads = static_cast<unsigned>(std::min<std::size_t>(threads, files.size()));
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < files.size();) results[i] = verify_file(files[i]);
    };
    {
        std::vector<std::jthread> pool;
        for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
        work();
    }  // jthreads join here
    return results;
}

SignedFile sign_file(const std::filesystem::path& file, const KeyName& name, const PrivateKey& key) {
    fs::Fd fd = open_regular(file);
    const HashedStream hashed = hash_fd(fd.get());
    const auto sig = key.sign_digest(hashed.sha256);
    const auto sig_path = sig_path_for(file);
    fs::write_atomic(sig_path, format_sig_file(name, sig), 0644, false);
    return SignedFile{sig_path, key.public_key().fingerprint()};
}

}  // namespace condaguard
