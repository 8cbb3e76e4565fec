// conda-guard plugin's output (report.hpp), in its own source beside the
// command's mechanism (plugin_setup.hpp).
#include "plugin_setup.hpp"
#include "report.hpp"

#include <fmt/format.h>

namespace condaguard::cli {

namespace {

// `s` as one shell word: as it is when it needs no quoting, else in single quotes.
std::string shell_word(std::string_view s) {
    const bool plain = !s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                         "0123456789@%+=:,./_-") == std::string_view::npos;
    if (plain) return std::string(s);
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

nlohmann::json python_json(const CondaPython& py) {
    return {{"conda", py.conda.string()},
            {"python", py.python.string()},
            {"found_by", py.found_by},
            {"purelib", py.purelib.string()},
            {"prefix", py.prefix.string()}};
}

std::string_view state_word(PluginState s) {
    switch (s) {
        case PluginState::Loaded: return "loaded";
        case PluginState::NotInstalled: return "not-installed";
        case PluginState::Stale: return "stale";
        case PluginState::Disabled: return "disabled";
        case PluginState::NotLoaded: return "not-loaded";
    }
    return "stale";
}

// The exact command that points the plugin at `dir`.
std::string plugin_bin_dir_hint(const std::filesystem::path& dir) {
    return fmt::format("conda config --set plugins.{} {}", plugin_bin_dir_setting, shell_word(dir.string()));
}

}  // namespace

int Reporter::plugin_installed(const CondaPython& py, const PluginInstalled& done) const {
    const std::string hint = plugin_bin_dir_hint(done.bin_dir.exe_dir);
    if (json) {
        print_envelope("plugin install", 0,
                       {{"conda", python_json(py)},
                        {"plugin_version", done.version},
                        {"package", done.package.string()},
                        {"dist_info", done.dist_info.string()},
                        {"files", done.files},
                        {"replaced", done.replaced},
                        {"bin_dir",
                         {{"dir", done.bin_dir.exe_dir.string()},
                          {"beside_python", done.bin_dir.beside_python},
                          {"hint", done.bin_dir.beside_python ? nlohmann::json(nullptr) : nlohmann::json(hint)}}}});
        return 0;
    }
    fmt::print("installed {} {} into {} ({} files{})\n", plugin_dist_name, escape_text(done.version),
               escape_text(py.purelib.string()), done.files,
               done.replaced ? ", replacing the earlier install" : "");
    fmt::print("for conda {} run by {} ({})\n", escape_text(py.conda.string()), escape_text(py.python.string()),
               py.found_by);
    if (done.bin_dir.beside_python) {
        fmt::print("conda-guard is in {}, where the plugin looks first: nothing to configure\n",
                   escape_text(done.bin_dir.exe_dir.string()));
    } else {
        fmt::print("conda-guard is not in {}, where the plugin looks first, and nothing was configured; to use "
                   "this one (else the plugin looks on PATH), run:\n  {}\n",
                   escape_text((py.prefix / "bin").string()), escape_text(hint));
    }
    return 0;
}

int Reporter::plugin_removed(const CondaPython& py, const PluginRemoved& done) const {
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& p : done.removed) arr.push_back(p.string());
        print_envelope("plugin uninstall", 0, {{"conda", python_json(py)}, {"removed", std::move(arr)}});
        return 0;
    }
    if (done.removed.empty())
        fmt::print("{} is not installed in {}: nothing to remove\n", plugin_dist_name,
                   escape_text(py.purelib.string()));
    for (const auto& p : done.removed) fmt::print("removed: {}\n", escape_text(p.string()));
    return 0;
}

int Reporter::plugin_status(const CondaPython& py, const PluginStatus& s, std::string_view version) const {
    const int status = s.state == PluginState::Loaded ? 0 : 1;
    if (json) {
        nlohmann::json eps = nlohmann::json::array();
        for (const auto& e : s.entry_points) eps.push_back(e);
        print_envelope("plugin status", status,
                       {{"conda", python_json(py)},
                        {"state", state_word(s.state)},
                        {"expected_version", version},
                        {"installed_version", s.installed_version ? nlohmann::json(*s.installed_version)
                                                                  : nlohmann::json(nullptr)},
                        {"module_file", s.module_file ? nlohmann::json(*s.module_file) : nlohmann::json(nullptr)},
                        {"entry_points", std::move(eps)},
                        {"no_plugins", s.no_plugins ? nlohmann::json(*s.no_plugins) : nlohmann::json(nullptr)},
                        {"no_plugins_sources", s.no_plugins_sources},
                        {"registered_as",
                         s.registered_as ? nlohmann::json(*s.registered_as) : nlohmann::json(nullptr)},
                        {"problems", s.problems}});
        return status;
    }
    const std::string conda = escape_text(py.conda.string());
    switch (s.state) {
        case PluginState::Loaded:
            fmt::print("loaded: conda {} loads {} {} from {}\n", conda, plugin_dist_name, escape_text(version),
                       escape_text(s.module_file.value_or("")));
            break;
        case PluginState::NotInstalled:
            fmt::print("not-installed: conda {} does not load {} (install it with '{} plugin install')\n", conda,
                       plugin_dist_name, prog_);
            break;
        case PluginState::Stale:
            fmt::print("stale: conda {} would not load {} {}:\n", conda, plugin_dist_name, escape_text(version));
            for (const auto& p : s.problems) fmt::print("  {}\n", escape_text(p));
            fmt::print("(run '{} plugin install' to replace it)\n", prog_);
            break;
        case PluginState::Disabled:
        case PluginState::NotLoaded:
            fmt::print("{}: conda {} would not load {} {}:\n", state_word(s.state), conda, plugin_dist_name,
                       escape_text(version));
            for (const auto& p : s.problems) fmt::print("  {}\n", escape_text(p));
            break;
    }
    return status;
}

}  // namespace condaguard::cli
