// conda-guard: the gatekeeper's command.
#include "guard.hpp"

namespace condaguard::cli {

void add_jobs_option(CLI::App& sub, unsigned& jobs) {
    sub.add_option("-j,--jobs", jobs, "Worker threads (default 0: one per core)")->type_name("N");
}

void add_output_flags(CLI::App& sub, Reporter& out) {
    sub.add_flag("--json", out.json, "Print as JSON (with \"version\": 1)");
    sub.add_flag("-v,--verbose", out.verbose, "Show fingerprints in full in text output (JSON always has them)");
}

}  // namespace condaguard::cli

int main(int argc, char** argv) {
    using namespace condaguard::cli;
    GuardApp g;
    g.app.set_version_flag("--version", std::string(guard_prog) + " (condaguard) " CONDAGUARD_VERSION);
    g.app.require_subcommand(1);
    g.app.footer("Exit status: 0 all VALID, 1 a verification failure, 2 usage or I/O error; install, create, "
                 "update, remove, env: conda's own, 2 when conda could not run with the gate. See conda-guard(1).");
    add_index_command(g);
    add_verify_channel_command(g);
    add_verify_command(g);
    add_keys_command(g);
    add_state_command(g);
    add_policy_command(g);
    add_fetch_command(g);
    add_gate_command(g);
    add_plugin_command(g);
    add_wrap_commands(g);
    add_audit_command(g);
    one_value_per_option(g.app);
    if (const auto status = run_if_wrapped(argc, argv, g.out)) return *status;
    return run_main(g.app, argc, argv, g.out, [&] {
        for (auto& [sub, run] : g.runners)
            if (sub->parsed()) return run();
        throw CommandError(2, "no subcommand (see --help)");
    });
}
