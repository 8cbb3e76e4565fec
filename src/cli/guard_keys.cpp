// conda-guard keys list | show NAME | remove NAME [--private]
#include <condaguard/sys/fs.hpp>
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include "guard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard::cli {

namespace {

struct KeysArgs {
    std::string name;
    bool with_private = false;
    KeyOptions keys;
};

// One key's description; a key that does not load keeps its verdict.
// `private_names` is store.private_key_names(), listed once by the caller.
KeyInfo describe(const KeyStore& store, const std::string& name, const std::vector<std::string>& private_names) {
    KeyInfo k{.name = name,
              .public_key = store.dir() / (name + ".pub"),
              .has_private_key = std::binary_search(private_names.begin(), private_names.end(), name)};
    try {
        const PublicKey pub = store.load_public(KeyName(name));
        k.verdict = Verdict::Valid;
        k.type = to_string(pub.type());
        k.bits = pub.bits();
        k.fingerprint = pub.fingerprint();
        k.pem = pub.to_pem();
    } catch (const VerdictError& e) {
        k.verdict = e.verdict();
        k.reason = e.what();
    }
    return k;
}

KeyName name_or_usage(const std::string& s) {
    if (auto why = KeyName::problem(s)) throw CommandError(2, *why);
    return KeyName(s);
}

int remove_key(const KeyStore& store, const KeyName& name, bool with_private, const Reporter& out) {
    const std::string pub = name.str() + ".pub";
    const KeyStore::Removal r = with_key_verdict([&] { return store.remove(name, with_private); });
    if (r.removed.empty() && with_private)
        throw CommandError(2, fmt::format("no key '{}' in {} (neither {} nor {})", name.str(), store.dir().string(),
                                          pub, name.str()));
    if (r.removed.empty() && r.private_key_left)
        throw CommandError(2, fmt::format("{} does not exist, only the private key {} does; remove it with "
                                          "'{} keys remove {} --private'",
                                          (store.dir() / pub).string(), (store.dir() / name.str()).string(),
                                          guard_prog, name.str()));
    if (r.removed.empty()) throw CommandError(2, fmt::format("{}: no such key file", (store.dir() / pub).string()));
    return out.keys_removed(r.removed);
}

}  // namespace

void add_keys_command(GuardApp& g) {
    auto a = std::make_shared<KeysArgs>();
    CLI::App* keys = g.app.add_subcommand("keys", "List, show and remove keys in the keys directory");
    keys->require_subcommand(1);
    keys->fallthrough();  // --keys-dir and --json may follow the action too
    a->keys.add_to(*keys);
    add_output_flags(*keys, g.out);
    auto store = [a, &g] {
        return a->keys.store(read_environment({.keys_dir = a->keys.keys_dir, .state_dir = {}}), g.out);
    };

    CLI::App* list = keys->add_subcommand("list", "Every public key with its type, size and fingerprint");
    g.runners[list] = [store, &g] {
        const KeyStore s = store();
        const auto private_names = s.private_key_names();
        std::vector<KeyInfo> listed;
        for (const auto& n : s.public_key_names()) {
            listed.push_back(describe(s, n, private_names));
            listed.back().pem.clear();  // the list shows no PEM
        }
        return g.out.keys_list(s.dir(), listed);
    };

    CLI::App* show = keys->add_subcommand("show", "One key in full, with its PEM");
    show->add_option("NAME", a->name, "Key name")->required();
    g.runners[show] = [store, a, &g] {
        const KeyStore s = store();
        const KeyName name = name_or_usage(a->name);
        const KeyInfo k = describe(s, name.str(), s.private_key_names());
        if (k.verdict == Verdict::MissingKey) throw CommandError(exit_code(k.verdict), "MISSING_KEY: " + k.reason);
        return g.out.key_show(k);
    };

    CLI::App* remove = keys->add_subcommand(
        "remove", "Remove NAME.pub; with --private also the private key NAME (whichever of the two exist)");
    remove->add_option("NAME", a->name, "Key name")->required();
    remove->add_flag("--private", a->with_private, "Also delete the private key NAME (irreversible)");
    g.runners[remove] = [store, a, &g] { return remove_key(store(), name_or_usage(a->name), a->with_private, g.out); };
}

}  // namespace condaguard::cli
