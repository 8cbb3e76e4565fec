#include <condaguard/trust/verdict.hpp>

#include <condaguard/sys/fs.hpp>

#include <exception>

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
    case Verdict::Unverified: return "UNVERIFIED";
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

void fail_from_current_exception(Result& r) noexcept {
    auto set = [&](Verdict v, std::string reason) noexcept {
        r.verdict = v;
        r.reason = std::move(reason);
    };
    try {
        try {
            throw;
        } catch (const VerdictError& e) {
            set(e.verdict(), e.what());
        } catch (const fs::NotRegularFile& e) {
            std::string why = e.path() == r.path ? e.what() : e.path() + " " + e.what();
            set(e.kind() == fs::FileKind::Missing ? Verdict::Error : Verdict::Invalid, std::move(why));
        } catch (const std::exception& e) {
            set(Verdict::Error, e.what());
        } catch (...) {
            set(Verdict::Error, "unknown internal error");
        }
    } catch (...) {  // out of memory while building the reason
        r.verdict = Verdict::Error;
    }
    if (r.verdict == Verdict::Valid) r.verdict = Verdict::Error;
}

}  // namespace condaguard
