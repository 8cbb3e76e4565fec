#include <condaguard/verdict.hpp>

namespace condaguard {

std::string_view to_string(Verdict v) noexcept {
    switch (v) {
    case Verdict::Valid: return "VALID";
    case Verdict::Invalid: return "INVALID";
    case Verdict::MissingSig: return "MISSING_SIG";
    case Verdict::MissingKey: return "MISSING_KEY";
    case Verdict::UntrustedKey: return "UNTRUSTED_KEY";
    case Verdict::BadSigFile: return "BAD_SIG_FILE";
    case Verdict::BadKey: return "BAD_KEY";
    case Verdict::Expired: return "EXPIRED";
    case Verdict::Rollback: return "ROLLBACK";
    case Verdict::Error: return "ERROR";
    }
    return "ERROR";
}

int exit_code(Verdict v) noexcept {
    switch (v) {
    case Verdict::Valid: return 0;
    case Verdict::Error: return 2;
    default: return 1;
    }
}

}  // namespace condaguard
