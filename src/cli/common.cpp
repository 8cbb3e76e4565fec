#include "common.hpp"

#include "report.hpp"

#include <fmt/format.h>

namespace condaguard::cli {

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
    return KeyStore(keys_dir.empty() ? default_keys_dir() : std::filesystem::path(keys_dir), policy);
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
