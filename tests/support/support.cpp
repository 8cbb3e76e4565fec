#include "support.hpp"

#include <condaguard/sys/process.hpp>
#include <lib/openssl/handles.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard::test {

TempDir::TempDir() {
    std::string tmpl = (stdfs::temp_directory_path() / "condaguard-test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    // Restore permissions a test may have removed so cleanup can recurse.
    for (auto it = stdfs::recursive_directory_iterator(path_, ec); !ec && it != stdfs::recursive_directory_iterator();
         it.increment(ec)) {
        if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
    stdfs::remove_all(path_, ec);
}

namespace {
void on_deadline(int) {
    static const char msg[] = "\ntest deadline passed: the code under test hung\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(124);
}
}  // namespace

Deadline::Deadline(unsigned seconds) {
    struct sigaction sa {};
    sa.sa_handler = on_deadline;
    ::sigaction(SIGALRM, &sa, nullptr);
    ::alarm(seconds);
}

Deadline::~Deadline() { ::alarm(0); }

void write_file(const stdfs::path& p, std::string_view data, mode_t mode) {
    stdfs::create_directories(p.parent_path());
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot write " + p.string());
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("write failed: " + p.string());
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(fd);
    ::chmod(p.c_str(), mode);
}

std::string read_file(const stdfs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

mode_t file_mode(const stdfs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw std::runtime_error("lstat " + p.string());
    return st.st_mode & 07777;
}

std::optional<stdfs::path> shared_dir() {
    const char* d = std::getenv("CONDAGUARD_SHARED_DIR");
    if (d == nullptr || *d == '\0') return std::nullopt;
    std::error_code ec;
    if (!stdfs::is_directory(stdfs::path(d) / "fixtures", ec)) return std::nullopt;
    return stdfs::path(d);
}

namespace {
PrivateKey make_key(KeyType type, unsigned bits);
}  // namespace

namespace {
PrivateKey make_key(KeyType type, unsigned bits);
}  // namespace

const PrivateKey& cached_key(KeyType type, unsigned bits, int slot) {
    static std::map<std::tuple<KeyType, unsigned, int>, PrivateKey> keys;
    auto k = std::make_tuple(type, bits, slot);
    auto it = keys.find(k);
    if (it == keys.end()) it = keys.emplace(k, make_key(type, bits)).first;
    return it->second;
}

const PrivateKey& Keys::add(const std::string& name, KeyType type, unsigned bits) {
    const PrivateKey& key = cached_key(type, bits, 0);
    stdfs::create_directories(keys());
    ::chmod(keys().c_str(), 0700);
    write_file(keys() / name, key.to_pem(), 0600);
    write_file(keys() / (name + ".pub"), key.public_key().to_pem(), 0644);
    return key;
}

namespace {

ossl::Pkey load_pem_private(const std::string& pem) {
    ossl::Bio bio{ossl::check_ptr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "BIO_new_mem_buf")};
    return ossl::Pkey{ossl::check_ptr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
                                      "test: PEM_read_bio_PrivateKey")};
}

ossl::Bio mem_bio() { return ossl::Bio{ossl::check_ptr(BIO_new(BIO_s_mem()), "BIO_new")}; }

std::string contents(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n < 0 || (n > 0 && data == nullptr)) ossl::fail("BIO_get_mem_data");
    return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* k, bool priv) {
    ossl::Bio bio = mem_bio();
    if (priv)
        ossl::check(PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr),
                    "PEM_write_bio_PrivateKey");
    else
        ossl::check(PEM_write_bio_PUBKEY(bio.get(), k), "PEM_write_bio_PUBKEY");
    return contents(bio.get());
}

// The library makes no RSA keys under default_min_rsa_bits: legacy-sized
// test keys are made with raw OpenSSL and read under a lowered floor.
PrivateKey make_key(KeyType type, unsigned bits) {
    if (type == KeyType::Ed25519 || bits >= default_min_rsa_bits) return PrivateKey::generate(type, bits);
    const ossl::Pkey raw{ossl::check_ptr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)),
                                         "test: RSA keygen")};
    return PrivateKey::from_pem(pem_of(raw.get(), true), "legacy test key", KeyPolicy{.min_rsa_bits = bits});
}

EVP_PKEY* ec_key() {
    static const ossl::Pkey k{ossl::check_ptr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), "EC keygen")};
    return k.get();
}
}  // namespace

std::vector<unsigned char> raw_rsa_sign(const PrivateKey& key, const Sha256Digest& digest, RawScheme scheme) {
    ossl::Pkey k = load_pem_private(key.to_pem());
    ossl::PkeyCtx ctx{ossl::check_ptr(EVP_PKEY_CTX_new(k.get(), nullptr), "EVP_PKEY_CTX_new")};
    bool ok = EVP_PKEY_sign_init(ctx.get()) == 1 && EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) == 1;
    switch (scheme) {
    case RawScheme::Pkcs1v15: ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1; break;
    case RawScheme::PssSalt20:
    case RawScheme::PssSalt0:
        ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), scheme == RawScheme::PssSalt20 ? 20 : 0) == 1;
        break;
    case RawScheme::Pss:
        ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), 32) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) == 1;
        break;
    case RawScheme::PssSalt32Mgf1Sha1:
        ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), 32) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) == 1;
        break;
    }
    std::vector<unsigned char> sig(static_cast<std::size_t>(EVP_PKEY_get_size(k.get())));
    size_t len = sig.size();
    ok = ok && EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) == 1;
    if (!ok) throw std::runtime_error("test: raw RSA signing failed");
    sig.resize(len);
    return sig;
}

std::string ec_private_pem() { return pem_of(ec_key(), true); }
std::string ec_public_pem() { return pem_of(ec_key(), false); }

std::string rsa_private_pem_pkcs8_encrypted(const PrivateKey& key) {
    ossl::Pkey k = load_pem_private(key.to_pem());
    ossl::Bio bio = mem_bio();
    static char pass[] = "secret";
    ossl::check(PEM_write_bio_PKCS8PrivateKey(bio.get(), k.get(), EVP_aes_256_cbc(), pass, 6, nullptr, nullptr),
                "PEM_write_bio_PKCS8PrivateKey");
    return contents(bio.get());
}

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              const std::string& stdin_data) {
    std::vector<std::string> inherited;
    for (char** e = environ; *e != nullptr; ++e) inherited.emplace_back(*e);
    auto outcome = process::run({
        .argv = argv,
        .env = process::with_overrides(inherited, env),
        .stdin_data = stdin_data,
        .timeout = kCommandTimeout,
    });
    const std::string what = argv.empty() ? std::string() : argv.front();
    if (outcome.ending == process::Ending::TimedOut)
        throw std::runtime_error(what + " did not finish within " + std::to_string(kCommandTimeout.count()) +
                                 " s and was killed");
    if (outcome.out.dropped != 0 || outcome.err.dropped != 0)
        throw std::runtime_error(what + " wrote more than " + std::to_string(process::kDefaultOutputCap) +
                                 " bytes to stdout or stderr");
    return RunResult{
        .status = outcome.shell_status(),
        .out = std::move(outcome.out.data),
        .err = std::move(outcome.err.data),
        .max_rss_kib = outcome.max_rss_kib,
    };
}

std::string conda_sign_exe() {
    const char* p = std::getenv("CONDA_SIGN_EXE");
    if (p == nullptr) throw std::runtime_error("CONDA_SIGN_EXE is not set (run the tests through meson test)");
    return p;
}

std::string conda_guard_exe() {
    const char* p = std::getenv("CONDA_GUARD_EXE");
    if (p == nullptr) throw std::runtime_error("CONDA_GUARD_EXE is not set (run the tests through meson test)");
    return p;
}

RunResult run_isolated(const std::string& exe, std::vector<std::string> args, const stdfs::path& home,
                       std::vector<std::string> env) {
    args.insert(args.begin(), exe);
    env.insert(env.begin(), {"CONDA_KEYS_DIR=", "CONDA_GUARD_STATE_DIR=", "HOME=" + home.string()});
    return run(args, env);
}

bool give_group_away(const stdfs::path& p) {
    constexpr gid_t shared_gid = 12345;  // nobody's private group
    if (::geteuid() != 0) return false;
    if (::lchown(p.c_str(), static_cast<uid_t>(-1), shared_gid) != 0)
        throw std::system_error(errno, std::generic_category(), "chgrp " + p.string());
    return true;
}

}  // namespace condaguard::test
