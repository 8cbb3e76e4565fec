// conda-guard install|create|update|remove|env create|env update [ARGS]:
// conda with the gate, for a conda that does not have the plugin installed.
//
// Runs conda's own Python (the #! line of $CONDA_EXE, else of conda on PATH)
// on the plugin's _bootstrap.py with ARGS untouched (contract-wrapper.md):
// the bootstrap registers the plugin on conda's plugin manager, proves conda
// will call its hooks, writes "registered conda-guard VERSION" into a pipe
// (descriptor 3, CONDAGUARD_BOOTSTRAP_FD) and only then calls conda's main.
// The exit status is conda's; it is 2, and conda never ran, when conda
// cannot be found or run that way, when ARGS ask for no plugins, and when
// the child ends without that line.
#include "guard.hpp"
#include "plugin_setup.hpp"

#include <condaguard/sys/process.hpp>

#include <fmt/format.h>

#include <string_view>

#ifndef CONDAGUARD_PLUGIN_SOURCE_DIR
#error "meson passes the source tree's plugin/conda_guard_plugin as CONDAGUARD_PLUGIN_SOURCE_DIR"
#endif

namespace condaguard::cli {

namespace {

constexpr std::string_view no_plugins_option = "--no-plugins";
// argparse takes any unambiguous prefix of an option: --no-pl is the
// shortest that names only --no-plugins among conda's options.
constexpr std::size_t no_plugins_shortest_prefix = 7;
constexpr std::string_view registered_line = "registered conda-guard ";

// Whether conda's argparse would read `arg` as --no-plugins.
bool asks_for_no_plugins(std::string_view arg) {
    if (arg.starts_with(std::string(no_plugins_option) + "=")) return true;
    return arg.size() >= no_plugins_shortest_prefix && no_plugins_option.starts_with(arg);
}

// Runs `conda COMMAND... ARGS...` through the bootstrap; returns conda's status.
int run_conda(const std::vector<std::string>& command, const std::vector<std::string>& args) {
    for (const auto& a : args)
        if (asks_for_no_plugins(a))
            throw CommandError(2, fmt::format("{} would run conda without the gate: refused, conda did not run", a));

    const auto variables = read_variables();
    std::filesystem::path conda;
    std::filesystem::path python;
    std::filesystem::path bootstrap;
    std::filesystem::path here;
    try {
        try {
            conda = choose_conda("", variables);
        } catch (const std::runtime_error&) {
            throw std::runtime_error("no conda: set CONDA_EXE, or put conda on PATH");
        }
        std::error_code ec;
        const std::filesystem::path real = std::filesystem::canonical(conda, ec);
        if (ec) throw std::runtime_error(fmt::format("{}: {}", conda.string(), ec.message()));
        python = shebang_python(real);
        here = running_exe_dir();
        bootstrap = find_plugin_source(here, CONDAGUARD_PLUGIN_SOURCE_DIR) / "_bootstrap.py";
        if (!std::filesystem::is_regular_file(bootstrap, ec))
            throw std::runtime_error(fmt::format("{} is missing", bootstrap.string()));
    } catch (const std::exception& e) {
        throw CommandError(2, fmt::format("{}; conda did not run", e.what()));
    }

    std::vector<std::string> base;
    base.reserve(variables.size());
    for (const auto& [k, v] : variables) base.push_back(k + "=" + v);
    const std::vector<std::string> overrides{
        fmt::format("CONDAGUARD_BOOTSTRAP_FD={}", process::kMessageFd),
        "CONDA_EXE=" + conda.string(),
        // The plugin runs this very conda-guard (conda's own setting).
        fmt::format("CONDA_PLUGINS_{}={}", "CONDAGUARD_BIN_DIR", here.string()),
        // The environment beats a condarc's no_plugins: true.
        "CONDA_NO_PLUGINS=false",
    };
    process::AttachedCommand cmd{
        .argv = {python.string(), bootstrap.string()},
        .env = process::with_overrides(base, overrides),
        .message_pipe = true,
    };
    cmd.argv.insert(cmd.argv.end(), command.begin(), command.end());
    cmd.argv.insert(cmd.argv.end(), args.begin(), args.end());

    process::AttachedOutcome o;
    try {
        o = process::run_attached(cmd);
    } catch (const std::system_error& e) {
        throw CommandError(2, fmt::format("{}; conda did not run", e.what()));
    }
    const std::string& m = o.message.data;
    if (!m.starts_with(registered_line) || !m.ends_with("\n") || m.find('\n') != m.size() - 1)
        throw CommandError(2, fmt::format("the gate was not proven loaded into conda (bootstrap ended with status "
                                          "{}); conda did not run",
                                          o.shell_status()));
    return o.shell_status();
}

// A subcommand that hands every argument after it to conda untouched:
// `--help` included (conda's help, not ours), options, `--` and all.
CLI::App* add_passthrough(GuardApp& g, CLI::App& parent, const std::string& name, std::vector<std::string> command,
                          const std::string& help) {
    CLI::App* sub = parent.add_subcommand(name, help);
    sub->prefix_command();
    sub->set_help_flag();
    g.runners[sub] = [sub, command = std::move(command)] { return run_conda(command, sub->remaining()); };
    return sub;
}

}  // namespace

void add_wrap_commands(GuardApp& g) {
    const std::string run = "Run `conda {}` (ARGS untouched, --help is conda's) with the gate proven loaded first";
    for (const char* c : {"install", "create", "update", "remove"})
        add_passthrough(g, g.app, c, {c}, fmt::format(fmt::runtime(run), c));
    CLI::App* env = g.app.add_subcommand("env", "Run `conda env create|update` with the gate proven loaded first");
    env->require_subcommand(1);
    for (const char* c : {"create", "update"})
        add_passthrough(g, *env, c, {"env", c}, fmt::format(fmt::runtime(run), std::string("env ") + c));
}

}  // namespace condaguard::cli
