// libFuzzer target: key file text -> PublicKey::from_pem and PrivateKey::from_pem.
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const condaguard::KeyPolicy policy{.min_rsa_bits = 1024};
    try {
        auto k = condaguard::PublicKey::from_pem(text, "fuzz.pub", policy);
        if (k.fingerprint().size() != 64) __builtin_trap();
    } catch (const condaguard::VerdictError& e) {
        if (e.verdict() != condaguard::Verdict::BadKey) __builtin_trap();
    }
    try {
        (void)condaguard::PrivateKey::from_pem(text, "fuzz", policy);
    } catch (const condaguard::VerdictError& e) {
        if (e.verdict() != condaguard::Verdict::BadKey) __builtin_trap();
    }
    return 0;
}
