// libFuzzer target: .sig text -> parse_sig_file. Any outcome but a verdict or a parse is a bug.
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verdict.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto sig = condaguard::parse_sig_file(text, "fuzz.sig");
        // What parses must round-trip through the writer to the same key and bytes.
        auto again = condaguard::parse_sig_file(condaguard::format_sig_file(sig.key, sig.signature), "again.sig");
        if (!(again.key == sig.key) || again.signature != sig.signature) __builtin_trap();
    } catch (const condaguard::VerdictError& e) {
        if (e.verdict() != condaguard::Verdict::BadSigFile) __builtin_trap();
    }
    if (auto decoded = condaguard::base64_decode_strict(text)) {
        if (condaguard::base64_encode(*decoded) != text) __builtin_trap();  // strict means canonical
    }
    return 0;
}
