// conda-guard subcommands: each file adds one subcommand to the app and
// registers what runs when it is chosen.
#pragma once

#include "common.hpp"
#include "report.hpp"

#include <functional>
#include <map>
#include <optional>

namespace condaguard::cli {

inline constexpr const char* guard_prog = "conda-guard";

struct GuardApp {
    CLI::App app{"Sign, index and verify conda channels and packages; refuse what nobody vouched for.", guard_prog};
    Reporter out{guard_prog};  // --json, -v/--verbose
    std::map<CLI::App*, std::function<int()>> runners;

    CLI::App* add(const std::string& name, const std::string& help, std::function<int()> run) {
        CLI::App* sub = app.add_subcommand(name, help);
        runners[sub] = std::move(run);
        return sub;
    }
};

// --jobs N: worker threads (0: one per core).
void add_jobs_option(CLI::App& sub, unsigned& jobs);

// --json and -v/--verbose, bound to `out`.
void add_output_flags(CLI::App& sub, Reporter& out);

void add_index_command(GuardApp& g);
void add_verify_channel_command(GuardApp& g);
void add_verify_command(GuardApp& g);
void add_keys_command(GuardApp& g);
void add_state_command(GuardApp& g);
void add_policy_command(GuardApp& g);
void add_fetch_command(GuardApp& g);
void add_gate_command(GuardApp& g);
void add_plugin_command(GuardApp& g);
// install, create, update, remove, env create, env update: conda with the gate
// (guard_wrap.cpp). add_wrap_commands lists them in --help (and makes `env`
// alone a usage error); run_if_wrapped runs them before CLI11 parses, since
// everything after them is conda's (CLI11 would take `--`, or a word naming
// another subcommand, for its own). Returns nullopt when argv names none.
void add_wrap_commands(GuardApp& g);
std::optional<int> run_if_wrapped(int argc, char** argv, const Reporter& out);
void add_audit_command(GuardApp& g);

}  // namespace condaguard::cli
