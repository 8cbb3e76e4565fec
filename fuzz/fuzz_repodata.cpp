// libFuzzer target: a signed repodata.json with arbitrary content -> verify_index.
// Each input is signed with a fixed ed25519 key first, so the fuzzer reaches
// the parsing of authenticated bytes (what a compromised or buggy signer sends).
#include <condaguard/channel/verify.hpp>
#include <condaguard/trust/sigfile.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace {

struct World {
    std::filesystem::path root;
    condaguard::PrivateKey key = condaguard::PrivateKey::generate(condaguard::KeyType::Ed25519, 0);
    World() {
        char tmpl[] = "/tmp/condaguard-fuzz.XXXXXX";
        root = ::mkdtemp(tmpl);
        std::filesystem::create_directories(root / "keys");
        std::filesystem::permissions(root / "keys", std::filesystem::perms::owner_all);
        std::filesystem::create_directories(root / "channel" / "noarch");
        condaguard::KeyStore(root / "keys").store(condaguard::KeyName("fuzz"), key, true);
    }
};

void write(const std::filesystem::path& p, std::string_view data) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World w;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto dir = w.root / "channel" / "noarch";
    write(dir / "repodata.json", text);
    write(dir / "repodata.json.sig",
          condaguard::format_sig_file(condaguard::KeyName("fuzz"), w.key.sign_digest(condaguard::sha256_bytes(text))));
    condaguard::KeyStore store(w.root / "keys");
    condaguard::Verifier verifier(store);
    std::filesystem::remove_all(w.root / "state");
    condaguard::StateStore state(w.root / "state");
    condaguard::ChannelPolicy policy;
    policy.now = *condaguard::parse_time("2026-11-25T10:00:00Z");
    auto idx = condaguard::verify_index(dir, "noarch", "fuzz", verifier, state, policy);
    if (idx.result.verdict == condaguard::Verdict::Valid && !idx.guard) __builtin_trap();
    for (const auto& r : idx.records()) {
        if (r.fn.data() == nullptr && !r.fn.empty()) __builtin_trap();
    }
    return 0;
}
