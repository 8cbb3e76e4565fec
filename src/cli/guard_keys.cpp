// conda-guard keys list | show NAME | remove NAME [--private]
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include "guard.hpp"
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>

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
nlohmann::json describe(const KeyStore& store, const std::string& name, const std::vector<std::string>& private_names) {
    nlohmann::json j{{"name", name}, {"public_key", (store.dir() / (name + ".pub")).string()}};
    j["has_private_key"] = std::binary_search(private_names.begin(), private_names.end(), name);
    try {
        const PublicKey k = store.load_public(KeyName(name));
        j["status"] = "VALID";
        j["type"] = to_string(k.type());
        j["bits"] = k.bits();
        j["fingerprint"] = k.fingerprint();
    } catch (const VerdictError& e) {
        j["status"] = to_string(e.verdict());
        j["reason"] = e.what();
    }
    return j;
}

void print_key_line(const nlohmann::json& k) {
    if (k["status"] == "VALID")
        fmt::print("{:<24} {:<7} {:>5}  {}{}\n", k["name"].get<std::string>(), k["type"].get<std::string>(),
                   k["bits"].get<unsigned>(), k["fingerprint"].get<std::string>(),
                   k["has_private_key"].get<bool>() ? "  (private key present)" : "");
    else
        fmt::print("{:<24} {:<13} {}\n", k["name"].get<std::string>(), k["status"].get<std::string>(),
                   k["reason"].get<std::string>());
}

KeyName name_or_usage(const std::string& s) {
    if (auto why = KeyName::problem(s)) throw CommandError(2, *why);
    return KeyName(s);
}

}  // namespace

void add_keys_command(GuardApp& g) {
    auto a = std::make_shared<KeysArgs>();
    CLI::App* keys = g.app.add_subcommand("keys", "List, show and remove keys in the keys directory");
    keys->require_subcommand(1);
    keys->fallthrough();  // --keys-dir and --json may follow the action too
    a->keys.add_to(*keys);
    keys->add_flag("--json", g.json, "Print as JSON");

    CLI::App* list = keys->add_subcommand("list", "Every public key with its type, size and fingerprint");
    g.runners[list] = [a, &g] {
        const KeyStore store = a->keys.store(guard_prog);
        nlohmann::json arr = nlohmann::json::array();
        const auto private_names = store.private_key_names();
        for (const auto& n : store.public_key_names()) arr.push_back(describe(store, n, private_names));
        if (g.json) {
            print_json_object(stdout, {{"version", json_version}, {"command", "keys list"}, {"keys", arr}});
        } else {
            if (arr.empty()) fmt::print(stderr, "{}: no public keys in {}\n", guard_prog, store.dir().string());
            for (const auto& k : arr) print_key_line(k);
        }
        return 0;
    };

    CLI::App* show = keys->add_subcommand("show", "One key in full, with its PEM");
    show->add_option("NAME", a->name, "Key name")->required();
    g.runners[show] = [a, &g] {
        const KeyStore store = a->keys.store(guard_prog);
        const KeyName name = name_or_usage(a->name);
        const PublicKey k = with_key_verdict([&] { return store.load_public(name); });
        nlohmann::json j = describe(store, name.str(), store.private_key_names());
        j["pem"] = k.to_pem();
        if (g.json) {
            print_json_object(stdout, {{"version", json_version}, {"command", "keys show"}, {"key", j}});
        } else {
            fmt::print("name:        {}\npublic key:  {}\ntype:        {} {}\nfingerprint: {}\nprivate key: {}\n{}",
                       name.str(), j["public_key"].get<std::string>(), to_string(k.type()), k.bits(),
                       k.fingerprint(), j["has_private_key"].get<bool>() ? "present" : "absent", k.to_pem());
        }
        return 0;
    };

    CLI::App* remove = keys->add_subcommand("remove", "Remove NAME.pub (and the private key with --private)");
    remove->add_option("NAME", a->name, "Key name")->required();
    remove->add_flag("--private", a->with_private, "Also delete the private key NAME (irreversible)");
    g.runners[remove] = [a, &g] {
        const KeyStore store = a->keys.store(guard_prog);
        const KeyName name = name_or_usage(a->name);
        std::vector<std::filesystem::path> paths{store.dir() / (name.str() + ".pub")};
        if (a->with_private) paths.push_back(store.dir() / name.str());
        nlohmann::json removed = nlohmann::json::array();
        for (const auto& p : paths) {
            if (::unlink(p.c_str()) != 0) {
                if (errno == ENOENT) throw CommandError(2, p.string() + ": no such key file");
                throw CommandError(2, fmt::format("{}: {}", p.string(), std::strerror(errno)));
            }
            removed.push_back(p.string());
            if (!g.json) fmt::print("removed: {}\n", p.string());
        }
        if (g.json)
            print_json_object(stdout, {{"version", json_version}, {"command", "keys remove"}, {"removed", removed}});
        return 0;
    };
}

}  // namespace condaguard::cli
