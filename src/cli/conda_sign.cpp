// conda-sign: the old `conda sign` command, flag for flag, made fail-closed.
//
//   conda-sign --keygen NAME [--size BITS] [--type rsa|ed25519] [--force]
//   conda-sign [-i NAME|PATH] FILE...
//   conda-sign --verify FILE...
//   conda-sign --import-key PATH [--name NAME] [--force]

#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/signer.hpp>
#include <condaguard/trust/verifier.hpp>

#include "common.hpp"
#include "report.hpp"

#include <fmt/format.h>

namespace condaguard::cli {
namespace {

constexpr const char* prog = "conda-sign";

struct Options {
    KeyOptions keys;
    std::string keygen;
    std::optional<unsigned> size;
    std::string type = "rsa";
    bool force = false;
    bool verify = false;
    std::string input_key;
    std::string import_key;
    std::string name;
    std::vector<std::string> files;
    Reporter out{prog};  // --json, --verbose
};

KeyName key_name_or_usage(const std::string& s, const char* what) {
    if (auto why = KeyName::problem(s)) throw CommandError(2, fmt::format("{}: {}", what, *why));
    return KeyName(s);
}

StoredKey stored(const KeyName& name, const KeyPairPaths& paths, const PrivateKey& key) {
    return StoredKey{.name = name.str(),
                     .type = std::string(to_string(key.type())),
                     .bits = key.public_key().bits(),
                     .private_key = paths.private_key,
                     .public_key = paths.public_key,
                     .fingerprint = key.public_key().fingerprint()};
}

int run_keygen(const Options& o, const Environment& env) {
    const KeyName name = key_name_or_usage(o.keygen, "--keygen");
    const KeyType type = o.type == "ed25519" ? KeyType::Ed25519 : KeyType::Rsa;
    const unsigned bits = o.size.value_or(default_rsa_bits);
    if (type == KeyType::Rsa && bits < default_min_rsa_bits)
        throw CommandError(2, fmt::format("--size {}: RSA keys under {} bits are refused for new keys "
                                          "(--min-key-bits admits smaller old keys only to verify)",
                                          bits, default_min_rsa_bits));
    if (type == KeyType::Ed25519 && o.size)
        throw CommandError(2, "--size applies to RSA keys only");
    const KeyStore store = o.keys.store(env, o.out);
    // Refuse a bad name or an existing pair before saying or doing anything.
    with_key_verdict([&] { store.check_can_store(name, o.force); });
    o.out.generating_key();
    const PrivateKey key = PrivateKey::generate(type, bits);
    return o.out.key_stored("keygen", stored(name, store.store(name, key, o.force), key));
}

int run_import(const Options& o, const Environment& env) {
    const std::filesystem::path src = o.import_key;
    const KeyName name = key_name_or_usage(o.name.empty() ? src.filename().string() : o.name, "key name");
    const KeyStore store = o.keys.store(env, o.out);
    const PrivateKey key = with_key_verdict([&] { return load_private_key_file(src, store.policy()); });
    return o.out.key_stored("import-key", stored(name, store.store(name, key, o.force), key));
}

int run_sign(const Options& o, const Environment& env) {
    if (o.files.empty()) throw CommandError(2, "no files to sign (see --help)");
    const KeyStore store = o.keys.store(env, o.out);
    std::optional<KeyName> name;
    std::optional<PrivateKey> key;
    if (o.input_key.find('/') != std::string::npos) {
        // A path: the name written into FILE.sig is the key file's name, never the path.
        const std::filesystem::path path = o.input_key;
        name = key_name_or_usage(path.filename().string(), "-i");
        key.emplace(with_key_verdict([&] { return load_private_key_file(path, store.policy()); }));
    } else {
        if (!o.input_key.empty()) {
            name = key_name_or_usage(o.input_key, "-i");
        } else {
            const auto names = store.private_key_names();
            if (names.empty())
                throw CommandError(2, fmt::format("no private key in {}; create one with '{} --keygen NAME'",
                                                  store.dir().string(), prog));
            if (names.size() > 1)
                throw CommandError(2, fmt::format("several private keys in {} ({}); choose one with -i NAME",
                                                  store.dir().string(), fmt::join(names, ", ")));
            name = KeyName(names.front());
        }
        key.emplace(with_key_verdict([&] { return store.load_private(*name); }));
    }
    with_key_verdict([&] { key->check_can_sign("key " + name->str()); });
    SignReport report{.key = name->str(), .fingerprint = key->public_key().fingerprint(), .files = {}};
    for (const auto& f : o.files) {
        SignOutcome outcome{.path = f, .sig = std::nullopt, .error = {}};
        try {
            outcome.sig = sign_file(f, *name, *key).sig_path;
        } catch (const std::exception& e) {
            outcome.error = e.what();
        }
        report.files.push_back(std::move(outcome));
    }
    return o.out.signed_files(report);
}

int run_verify(const Options& o, const Environment& env) {
    if (o.files.empty()) throw CommandError(2, "no files to verify (see --help)");
    const KeyStore store = o.keys.store(env, o.out);
    Verifier verifier(store);
    return o.out.results("verify", verifier.verify_files({o.files.begin(), o.files.end()}));
}

}  // namespace
}  // namespace condaguard::cli

int main(int argc, char** argv) {
    using namespace condaguard::cli;
    Options o;
    CLI::App app{"Sign conda packages and verify their signatures. Signatures are written "
                 "alongside the files as FILE.sig.",
                 prog};
    app.set_version_flag("--version", std::string(prog) + " (condaguard) " CONDAGUARD_VERSION);
    auto* keygen = app.add_option("-k,--keygen", o.keygen, "Generate a key pair KEYS/NAME and KEYS/NAME.pub")
                       ->type_name("NAME");
    app.add_option("--size", o.size, "RSA key size for --keygen (default 2048, at least 2048)")
                     ->type_name("BITS")
                     ->check(CLI::Range(1u, 16384u))
                     ->needs(keygen);
    app.add_option("--type", o.type, "Key type for --keygen: rsa (default) or ed25519")
                     ->type_name("TYPE")
                     ->check(CLI::IsMember({"rsa", "ed25519"}))
                     ->needs(keygen);
    auto* verify = app.add_flag("-v,--verify", o.verify, "Verify FILE(s) against FILE.sig");
    auto* input = app.add_option("-i,--input-key", o.input_key,
                                 "Private key to sign with: a NAME in the keys directory or a PATH (containing '/')")
                      ->type_name("NAME|PATH");
    auto* import = app.add_option("--import-key", o.import_key,
                                  "Copy an existing private key into the keys directory and write its .pub")
                       ->type_name("PATH");
    app.add_option("--name", o.name, "Name for --import-key (default: the file's name)")
                     ->type_name("NAME")
                     ->needs(import);
    auto* force = app.add_flag("--force", o.force, "Let --keygen or --import-key replace an existing key pair");
    o.keys.add_to(app);
    app.add_flag("--json", o.out.json, "Print results as JSON (with \"version\": 1)");
    app.add_flag("--verbose", o.out.verbose, "Show fingerprints in full in text output (JSON always has them)");
    auto* files = app.add_option("files", o.files, "Files to sign or verify")->type_name("FILE");

    keygen->excludes(verify)->excludes(input)->excludes(import)->excludes(files);
    import->excludes(verify)->excludes(input)->excludes(files);
    verify->excludes(input);
    force->excludes(verify)->excludes(input);
    app.footer("Exit status: 0 all VALID (or the key or signatures were written), 1 a verification or key failure, "
               "2 usage or I/O error. See conda-sign(1).");

    one_value_per_option(app);

    return run_main(app, argc, argv, o.out, [&] {
        const condaguard::Environment env = read_environment({.keys_dir = o.keys.keys_dir, .state_dir = {}});
        if (!o.keygen.empty()) return run_keygen(o, env);
        if (!o.import_key.empty()) return run_import(o, env);
        if (o.verify) return run_verify(o, env);
        return run_sign(o, env);
    });
}
