// Pieces shared by the commands: errors that end a command with an exit
// status, and the keys-directory and key-policy options.
#pragma once

#include <condaguard/sys/env.hpp>
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace condaguard::cli {

// Ends the command: message to stderr (and a JSON error object with --json).
class CommandError : public std::runtime_error {
public:
    CommandError(int status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
    int status() const noexcept { return status_; }

private:
    int status_;
};

// The one place that reads environment variables: HOME (else the password
// database), CONDA_KEYS_DIR and CONDA_GUARD_STATE_DIR; a non-empty option
// (--keys-dir, --state-dir) wins over its variable.
Environment read_environment(const std::string& keys_dir_option = {}, const std::string& state_dir_option = {});

struct KeyOptions {
    std::string keys_dir;            // --keys-dir
    std::optional<unsigned> min_key_bits;  // --min-key-bits

    void add_to(CLI::App& app);
    // Resolves the keys directory and the policy; prints the floor warning.
    KeyStore store(const char* prog) const;
};

// Usage error (exit 2) naming `option` when any name is not a valid key name.
void check_key_names(const std::vector<std::string>& names, const char* option);

// Runs `load`; a key verdict (BAD_KEY, MISSING_KEY) ends the command with
// that verdict's exit status and its word in the message.
template <class F>
auto with_key_verdict(F load) -> decltype(load()) {
    try {
        return load();
    } catch (const VerdictError& e) {
        throw CommandError(exit_code(e.verdict()), std::string(to_string(e.verdict())) + ": " + e.what());
    }
}

// Runs `body`, turning CLI11, CommandError and other exceptions into an
// exit status (2 for usage and I/O errors) and one message on stderr.
int run_main(CLI::App& app, int argc, char** argv, const char* prog, const bool& json,
             const std::function<int()>& body);

}  // namespace condaguard::cli
