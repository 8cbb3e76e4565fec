#include "common.hpp"

#include "report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <pwd.h>
#include <unistd.h>

namespace condaguard::cli {

Environment read_environment(const EnvironmentOptions& options) {
    auto var = [](const char* name) -> std::string {
        const char* v = std::getenv(name);
        return v != nullptr ? v : "";
    };
    Environment env;
    std::string home = var("HOME");
    if (home.empty()) {
        const passwd* pw = ::getpwuid(::geteuid());
        if (pw == nullptr || pw->pw_dir == nullptr) throw std::runtime_error("cannot find the home directory");
        home = pw->pw_dir;
    }
    env.home = home;
    const std::string keys = !options.keys_dir.empty() ? options.keys_dir : var("CONDA_KEYS_DIR");
    env.keys_dir = !keys.empty() ? std::filesystem::path(keys) : env.home / ".conda" / "keys";
    const std::string state = !options.state_dir.empty() ? options.state_dir : var("CONDA_GUARD_STATE_DIR");
    env.state_dir = !state.empty() ? std::filesystem::path(state) : env.home / ".conda" / "guard";
    return env;
}

std::map<std::string, std::string> read_variables() {
    std::map<std::string, std::string> out;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view kv(*e);
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        out.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
    return out;
}

void KeyOptions::add_to(CLI::App& app) {
    app.add_option("--keys-dir", keys_dir,
                   "Keys directory (default: $CONDA_KEYS_DIR, else ~/.conda/keys)")
        ->type_name("DIR");
    app.add_option("--min-key-bits", min_key_bits,
                   "Accept RSA keys down to BITS (default 2048; lowering it prints a warning)")
        ->type_name("BITS")
        ->check(CLI::Range(1024u, 16384u));
}

KeyStore KeyOptions::store(const Environment& env, const Reporter& out) const {
    KeyPolicy policy;
    if (min_key_bits) {
        policy.min_rsa_bits = *min_key_bits;
        if (*min_key_bits < default_min_rsa_bits)
            out.warning(fmt::format("accepting RSA keys of {} bits or more (the safe minimum is {})", *min_key_bits,
                                    default_min_rsa_bits));
    }
    return KeyStore(env.keys_dir, policy);
}

void one_value_per_option(CLI::App& app) {
    for (CLI::Option* o : app.get_options()) {
        if (o->get_positional()) continue;
        o->allow_extra_args(false);
        // A flag takes no value: `--verify=false` is refused, not read as
        // "sign instead" (found in review).
        if (o->get_expected_max() == 0) o->disable_flag_override();
    }
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) one_value_per_option(*sub);
}

void check_key_names(const std::vector<std::string>& names, const char* option) {
    for (const auto& n : names)
        if (auto why = KeyName::problem(n)) throw CommandError(2, std::string(option) + ": " + *why);
}

namespace {

// When the parse stopped at an app that needs a subcommand and got none: why,
// naming the stray word ("unknown subcommand 'foo' for 'conda-guard keys'")
// or the choices.
std::optional<std::string> subcommand_problem(CLI::App& app) {
    CLI::App* at = &app;
    std::string path = app.get_name();
    for (;;) {
        const auto chosen = at->get_subcommands();
        if (chosen.empty()) break;
        at = chosen.front();
        path += " " + at->get_name();
    }
    const auto choices = at->get_subcommands([](CLI::App*) { return true; });
    if (choices.empty() || at->get_require_subcommand_min() == 0) return std::nullopt;
    // The stray word may sit with the app or, through fallthrough, with a parent.
    for (const std::string& word : app.remaining(true))
        if (!word.starts_with("-")) return fmt::format("unknown subcommand '{}' for '{}'", word, path);
    std::vector<std::string> names;
    for (const CLI::App* c : choices) names.push_back(c->get_name());
    return fmt::format("'{}' needs a subcommand: {}", path, fmt::join(names, ", "));
}

}  // namespace

int run_main(CLI::App& app, int argc, char** argv, const Reporter& out, const std::function<int()>& body) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        if (auto problem = subcommand_problem(app)) return out.usage_error(*problem);
        return out.usage_error(e.what());
    }
    try {
        return body();
    } catch (const CommandError& e) {
        return out.error(e.status(), e.what());
    } catch (const std::exception& e) {
        return out.error(2, e.what());
    }
}

}  // namespace condaguard::cli
