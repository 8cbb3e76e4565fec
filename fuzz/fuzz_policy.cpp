// libFuzzer target: guard.yaml text -> parse_policy. Any outcome but a policy or a PolicyError is a bug.
#include <condaguard/config/policy.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const condaguard::Policy p = condaguard::parse_policy(text, "fuzz.yaml");
        for (const auto& rule : p.channels) (void)p.rule_for(rule.match, rule.match);
        for (const auto& k : p.revoked_keys)
            if (p.revoked(k.fingerprint) == nullptr) __builtin_trap();  // what was read is found
    } catch (const condaguard::PolicyError&) {
    }
    return 0;
}
