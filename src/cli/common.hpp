// Pieces shared by the commands: errors that end a command with an exit
// status, the environment, option rules, and the keys-directory and
// key-policy options.
#pragma once

#include <condaguard/sys/env.hpp>
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verdict.hpp>

#include "report.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <map>
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

// Options that override an environment variable; empty: not given.
struct EnvironmentOptions {
    std::string keys_dir;   // --keys-dir over CONDA_KEYS_DIR
    std::string state_dir;  // --state-dir over CONDA_GUARD_STATE_DIR
};

// The one place that reads environment variables: HOME (else the password
// database), CONDA_KEYS_DIR and CONDA_GUARD_STATE_DIR. Each command calls it
// once, after parsing, and passes the Environment on.
Environment read_environment(const EnvironmentOptions& options);

// Every environment variable, for what reads conda's configuration (CONDARC,
// CONDA_*, XDG_CONFIG_HOME, and the $VARS its paths may name).
std::map<std::string, std::string> read_variables();

struct KeyOptions {
    std::string keys_dir;                  // --keys-dir
    std::optional<unsigned> min_key_bits;  // --min-key-bits

    void add_to(CLI::App& app);
    // The keys directory of `env` under this policy; warns when the floor is lowered.
    KeyStore store(const Environment& env, const Reporter& out) const;
};

// Makes every value-taking option of `app` and of all its subcommands take
// exactly one value per occurrence (repeat the option for more), so that an
// option can never swallow the operands after it. Call once, after every
// option is added.
void one_value_per_option(CLI::App& app);

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

// Parses, then runs `body`, turning CLI11 errors, CommandError and other
// exceptions into an exit status (2 for usage and I/O errors) and one
// message through `out`. A word where a subcommand was required is an
// "unknown subcommand".
int run_main(CLI::App& app, int argc, char** argv, const Reporter& out, const std::function<int()>& body);

}  // namespace condaguard::cli
