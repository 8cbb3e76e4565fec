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
// the child ends without that line. ARGS never go through CLI11: see
// run_if_wrapped in guard.hpp.
#include "guard.hpp"
#include "plugin_setup.hpp"

#include <condaguard/sys/process.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <span>
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

// conda's name for a setting's environment variable: CONDA_PLUGINS_ + NAME in capitals.
std::string upper(std::string_view name) {
    std::string out(name);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

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
        fmt::format("CONDA_PLUGINS_{}={}", upper(plugin_bin_dir_setting), here.string()),
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

constexpr std::array<const char*, 4> top_commands{"install", "create", "update", "remove"};
constexpr std::array<const char*, 2> env_commands{"create", "update"};

bool one_of(std::string_view word, std::span<const char* const> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return word == n; });
}

}  // namespace

void add_wrap_commands(GuardApp& g) {
    const std::string run = "Run `conda {}` (ARGS untouched, --help is conda's) with the gate proven loaded first";
    for (const char* c : top_commands) g.app.add_subcommand(c, fmt::format(fmt::runtime(run), c));
    CLI::App* env = g.app.add_subcommand("env", "Run `conda env create|update` with the gate proven loaded first");
    env->require_subcommand(1);
    for (const char* c : env_commands) env->add_subcommand(c, fmt::format(fmt::runtime(run), std::string("env ") + c));
}

std::optional<int> run_if_wrapped(int argc, char** argv, const Reporter& out) {
    const std::vector<std::string> words(argv + std::min(argc, 1), argv + argc);
    std::size_t taken = 0;
    if (!words.empty() && one_of(words[0], top_commands)) taken = 1;
    else if (words.size() >= 2 && words[0] == "env" && one_of(words[1], env_commands)) taken = 2;
    if (taken == 0) return std::nullopt;
    const std::vector<std::string> command(words.begin(), words.begin() + static_cast<std::ptrdiff_t>(taken));
    const std::vector<std::string> args(words.begin() + static_cast<std::ptrdiff_t>(taken), words.end());
    try {
        return run_conda(command, args);
    } catch (const CommandError& e) {
        return out.error(e.status(), e.what());
    } catch (const std::exception& e) {
        return out.error(2, e.what());
    }
}

}  // namespace condaguard::cli
