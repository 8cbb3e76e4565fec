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
    // Nothing was authenticated: only the install gate gives it, to a package
    // of a channel its policy allows unsigned (signatures: none), fetched,
    // hashed against its index record, extracted and placed like a signed
    // one. Never a pass anywhere else (exit_code 1); the gate's report
    // accepts it as what the policy allowed, and shows it on its own line.
    Unverified,
};

std::string_view to_string(Verdict v) noexcept;

// Exit status for a verdict: 0 valid, 2 for Error (I/O, usage, internal), 1
// otherwise (UNVERIFIED included).
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

// The one place where an exception becomes a verdict; call it inside a catch
// block. VerdictError keeps its verdict and reason; a file that is not a
// regular file (sys/fs.hpp) is INVALID, or ERROR when it is missing;
// anything else is ERROR. A failure never leaves `r` VALID.
void fail_from_current_exception(Result& r) noexcept;

// Runs body(); whatever it throws becomes the verdict of `r`: fail closed.
template <class F>
void guarded(Result& r, F&& body) noexcept {
    try {
        body();
    } catch (...) {
        fail_from_current_exception(r);
    }
}

}  // namespace condaguard
