#include "common.hpp"

#include "report.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <pwd.h>
#include <unistd.h>

namespace condaguard::cli {

Environment read_environment(const std::string& keys_dir_option, const std::string& state_dir_option) {
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
    const std::string keys = !keys_dir_option.empty() ? keys_dir_option : var("CONDA_KEYS_DIR");
    env.keys_dir = !keys.empty() ? std::filesystem::path(keys) : env.home / ".conda" / "keys";
    const std::string state = !state_dir_option.empty() ? state_dir_option : var("CONDA_GUARD_STATE_DIR");
    env.state_dir = !state.empty() ? std::filesystem::path(state) : env.home / ".conda" / "guard";
    return env;
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

KeyStore KeyOptions::store(const char* prog) const {
    KeyPolicy policy;
    if (min_key_bits) {
        policy.min_rsa_bits = *min_key_bits;
        if (*min_key_bits < default_min_rsa_bits)
            fmt::print(stderr, "{}: warning: accepting RSA keys of {} bits or more (the safe minimum is {})\n", prog,
                       *min_key_bits, default_min_rsa_bits);
    }
    return KeyStore(read_environment(keys_dir).keys_dir, policy);
}

void check_key_names(const std::vector<std::string>& names, const char* option) {
    for (const auto& n : names)
        if (auto why = KeyName::problem(n)) throw CommandError(2, std::string(option) + ": " + *why);
}

int run_main(CLI::App& app, int argc, char** argv, const char* prog, const bool& json,
             const std::function<int()>& body) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "{}: error: {}\nRun '{} --help' for usage.\n", prog, e.what(), prog);
        return 2;
    }
    int status;
    std::string message;
    try {
        return body();
    } catch (const CommandError& e) {
        status = e.status();
        message = e.what();
    } catch (const std::exception& e) {
        status = 2;
        message = e.what();
    }
    fmt::print(stderr, "{}: error: {}\n", prog, message);
    if (json)
        print_json_object(stdout, {{"version", json_version}, {"status", "error"}, {"error", message}});
    return status;
}

}  // namespace condaguard::cli
