// conda-guard plugin install|uninstall|status [--conda CONDA_EXE] [--json]:
// puts the conda plugin into the Python that runs a given conda (and takes
// it out again), and says whether that conda will load it. The mechanism is
// plugin_setup.hpp's; the words are report_plugin.cpp's.
#include "guard.hpp"
#include "plugin_setup.hpp"

#include <fmt/format.h>

#include <climits>
#include <unistd.h>

#ifndef CONDAGUARD_PLUGIN_SOURCE_DIR
#error "meson passes the source tree's plugin/conda_guard_plugin as CONDAGUARD_PLUGIN_SOURCE_DIR"
#endif

namespace condaguard::cli {

namespace {

// NAME=VALUE for the child: this process's environment as it is.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& variables) {
    std::vector<std::string> env;
    env.reserve(variables.size());
    for (const auto& [k, v] : variables) env.push_back(k + "=" + v);
    return env;
}

struct Target {
    CondaPython python;
    std::vector<std::string> env;
};

Target target(const std::string& conda_option) {
    const auto variables = read_variables();
    Target t;
    t.env = child_environment(variables);
    try {
        t.python = find_conda_python(choose_conda(conda_option, variables), t.env);
    } catch (const std::system_error& e) {
        throw CommandError(2, e.what());
    }
    return t;
}

}  // namespace

void add_plugin_command(GuardApp& g) {
    auto conda = std::make_shared<std::string>();
    CLI::App* plugin = g.app.add_subcommand(
        "plugin", "Install the conda plugin into the Python that runs conda, remove it, or check that conda loads it");
    plugin->require_subcommand(1);
    plugin->fallthrough();  // --conda and --json may follow the action too
    plugin->add_option("--conda", *conda,
                       "The conda to act on (default: $CONDA_EXE, else conda on PATH)")
        ->type_name("CONDA_EXE");
    plugin->add_flag("--json", g.out.json, "Print as JSON (with \"version\": 1)");

    CLI::App* install = plugin->add_subcommand(
        "install", "Copy the plugin into conda's Python (site-packages) with a dist-info naming its entry point");
    g.runners[install] = [conda, &g] {
        const Target t = target(*conda);
        const std::filesystem::path here = running_exe_dir();
        const std::filesystem::path source = find_plugin_source(here, CONDAGUARD_PLUGIN_SOURCE_DIR);
        return g.out.plugin_installed(t.python, install_plugin(t.python, source, CONDAGUARD_VERSION, here));
    };

    CLI::App* uninstall = plugin->add_subcommand(
        "uninstall", "Remove what plugin install wrote (nothing another installer wrote); nothing there is fine");
    g.runners[uninstall] = [conda, &g] {
        const Target t = target(*conda);
        return g.out.plugin_removed(t.python, uninstall_plugin(t.python));
    };

    CLI::App* status = plugin->add_subcommand(
        "status", "Whether conda's Python loads this version of the plugin (exit 0 yes, 1 no or stale, 2 error)");
    g.runners[status] = [conda, &g] {
        const Target t = target(*conda);
        return g.out.plugin_status(t.python, plugin_status(t.python, CONDAGUARD_VERSION, t.env), CONDAGUARD_VERSION);
    };
}

}  // namespace condaguard::cli
