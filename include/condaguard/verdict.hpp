// Verdict words of the trust model: stable, used in text and JSON output.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace condaguard {

enum class Verdict {
    Valid,         // signature checked and good
    Invalid,       // bad signature or digest mismatch
    MissingSig,    // FILE.sig is not a regular file
    MissingKey,    // the named public key is not in the keys directory
    UntrustedKey,  // valid, but the key is not allowed for this channel
    BadSigFile,    // FILE.sig is malformed
    BadKey,        // the key file is unusable or unsafe
    Expired,       // signed index past its expiry
    Rollback,      // signed index older than one already seen
    Error,         // anything else (I/O, internal): always refuses
};

std::string_view to_string(Verdict v) noexcept;

// Exit status for a verdict: 0 valid, 2 for Error (I/O, usage, internal), 1 otherwise.
int exit_code(Verdict v) noexcept;

// The outcome of checking one artifact. `key` and `fingerprint` are set
// whenever a key was involved in reaching the verdict.
struct Result {
    std::string path;
    Verdict verdict = Verdict::Error;
    std::string reason;
    std::optional<std::string> key;
    std::optional<std::string> fingerprint;
};

// Thrown inside the library to stop work on one artifact with a verdict.
// Callers that produce Results catch it; nothing else should.
class VerdictError : public std::runtime_error {
public:
    VerdictError(Verdict v, const std::string& reason) : std::runtime_error(reason), verdict_(v) {}
    Verdict verdict() const noexcept { return verdict_; }

private:
    Verdict verdict_;
};

}  // namespace condaguard
