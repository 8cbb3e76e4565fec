// Test support: temporary directories, files, running the commands, and raw
// OpenSSL signing for building signatures the library itself refuses to make.
#pragma once

#include <condaguard/trust/digest.hpp>
#include <condaguard/trust/keys.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace condaguard::test {

namespace stdfs = std::filesystem;

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const stdfs::path& path() const noexcept { return path_; }
    stdfs::path operator/(const std::string& s) const { return path_ / s; }

private:
    stdfs::path path_;
};

// Bounds a test that could hang (a FIFO, a stalled peer): if the scope has
// not ended after `seconds`, the test binary prints which deadline passed and
// exits with status 124, so a hang fails the suite instead of stalling CI.
class Deadline {
public:
    explicit Deadline(unsigned seconds = 10);
    ~Deadline();
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;
};

void write_file(const stdfs::path& p, std::string_view data, mode_t mode = 0644);
// Gives `p` to a group that is not the user's private group (so that group
// write lets others in); false when that needs root and we are not.
bool give_group_away(const stdfs::path& p);
std::string read_file(const stdfs::path& p);
mode_t file_mode(const stdfs::path& p);

// ../shared next to the source tree (CONDAGUARD_SHARED_DIR), when present.
std::optional<stdfs::path> shared_dir();

// A keys directory with key pairs made once per test binary and copied in.
struct Keys {
    TempDir dir;
    stdfs::path keys() const { return dir.path() / "keys"; }
    // Writes KEYS/NAME and KEYS/NAME.pub for a cached key of this type/size.
    const PrivateKey& add(const std::string& name, KeyType type = KeyType::Rsa, unsigned bits = 2048);
};

// A key pair generated once per process and reused (keygen is slow).
const PrivateKey& cached_key(KeyType type, unsigned bits, int slot = 0);

// Raw signatures for negative tests: RSA PKCS#1 v1.5, or PSS with another salt.
// Pss is the right scheme (salt 32, MGF1-SHA-256), made without the library's
// signing floor: old signatures by 1024-bit keys.
enum class RawScheme { Pkcs1v15, PssSalt20, PssSalt0, PssSalt32Mgf1Sha1, Pss };
std::vector<unsigned char> raw_rsa_sign(const PrivateKey& key, const Sha256Digest& digest, RawScheme scheme);
// PEM of an EC P-256 private / public key (an unsupported key type).
std::string ec_private_pem();
std::string ec_public_pem();
std::string rsa_private_pem_pkcs8_encrypted(const PrivateKey& key);

struct RunResult {
    int status = -1;
    std::string out;
    std::string err;
    long max_rss_kib = 0;
};

// How long a command run by the tests may take before it is killed and the
// test fails (a hung command must not stall the suite).
inline constexpr std::chrono::seconds kCommandTimeout{60};

// Runs a program (argv[0] is its path) with arguments, no shell, with this
// process's environment plus `env` (NAME=VALUE, each replacing NAME), through
// process::run. Throws std::runtime_error when it runs past kCommandTimeout
// or writes more than process::kDefaultOutputCap to stdout or stderr.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& stdin_data = {});

// Paths of the built commands (from the environment meson sets).
std::string conda_sign_exe();
std::string conda_guard_exe();

// Runs a command with HOME set to `home` and CONDA_KEYS_DIR and
// CONDA_GUARD_STATE_DIR cleared; `env` entries come last and win.
RunResult run_isolated(const std::string& exe, std::vector<std::string> args, const stdfs::path& home,
                       std::vector<std::string> env = {});


}  // namespace condaguard::test
