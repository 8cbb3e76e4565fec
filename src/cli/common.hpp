// Pieces shared by the commands: errors that end a command with an exit
// status, and the keys-directory and key-policy options.
#pragma once

#include <condaguard/keys.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace condaguard::cli {

// Ends the command: message to stderr (and a JSON error object with --json).
class CommandError : public std::runtime_error {
public:
    CommandError(int status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
    int status() const noexcept { return status_; }

private:
    int status_;
};

struct KeyOptions {
    std::string keys_dir;            // --keys-dir
    std::optional<unsigned> min_key_bits;  // --min-key-bits

    void add_to(CLI::App& app);
    // Resolves the keys directory and the policy; prints the floor warning.
    KeyStore store(const char* prog) const;
};

// Runs `body`, turning CLI11, CommandError and other exceptions into an
// exit status (2 for usage and I/O errors) and one message on stderr.
int run_main(CLI::App& app, int argc, char** argv, const char* prog, const bool& json,
             const std::function<int()>& body);

}  // namespace condaguard::cli
