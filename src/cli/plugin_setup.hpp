// conda-guard plugin install|uninstall|status: which conda, the Python that
// runs it, and putting the conda plugin's files into (and out of) that
// Python's site-packages the way pip would have, as data (nothing here
// prints: report_plugin.cpp does).
//
// What install writes into PURELIB (sysconfig's "purelib" of conda's Python):
//   conda_guard_plugin/                      the package, copied from the
//                                            plugin's source folder (no
//                                            tests/, __pycache__/, *.pyc)
//   conda_guard_plugin-VERSION.dist-info/    METADATA (Name conda-guard-plugin,
//                                            Version), entry_points.txt
//                                            ([conda] conda-guard =
//                                            conda_guard_plugin.plugin),
//                                            INSTALLER (conda-guard) and RECORD
// Each folder is built under a temporary name beside it and renamed into
// place (an existing one of ours is swapped out atomically, then removed);
// every file is read and written through directory descriptors, and a link
// anywhere (in the source or at a destination name) is refused, never
// followed. "Ours" means: a conda_guard_plugin-*.dist-info whose INSTALLER
// says conda-guard; a conda_guard_plugin folder without one, or with a
// dist-info some other installer wrote, is left alone and the command stops.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace condaguard::cli {

inline constexpr const char* plugin_package = "conda_guard_plugin";
inline constexpr const char* plugin_dist_name = "conda-guard-plugin";
inline constexpr const char* plugin_entry_point_group = "conda";
inline constexpr const char* plugin_entry_point_name = "conda-guard";
inline constexpr const char* plugin_entry_point_module = "conda_guard_plugin.plugin";
inline constexpr const char* plugin_installer = "conda-guard";
// The plugin's conda setting for the folder of conda-guard and conda-sign
// (plugin.py's SETTING_BIN_DIR).
inline constexpr const char* plugin_bin_dir_setting = "condaguard_bin_dir";

// The plugin's package folder: first EXE_DIR/../share/condaguard/plugin/
// conda_guard_plugin (meson install), else `source_tree` (the source tree's
// plugin/conda_guard_plugin, for a conda-guard run from its build folder).
// Throws std::runtime_error naming both when neither is a folder.
std::filesystem::path find_plugin_source(const std::filesystem::path& exe_dir,
                                         const std::filesystem::path& source_tree);

// The conda to act on: `option` (--conda) if given, else CONDA_EXE from
// `variables`, else `conda` in a directory of PATH (empty and relative PATH
// entries are skipped). Throws std::runtime_error when none is found.
std::filesystem::path choose_conda(const std::string& option, const std::map<std::string, std::string>& variables);

// conda's own Python, and what it says of itself.
struct CondaPython {
    std::filesystem::path conda;    // the conda executable, links resolved
    std::filesystem::path python;   // the interpreter that runs it
    std::string found_by;           // "beside conda" or "conda's #! line"
    std::filesystem::path purelib;  // sysconfig.get_paths()["purelib"]
    std::filesystem::path prefix;   // sys.prefix
};

// How long conda's Python may take to answer, and how much it may say.
inline constexpr int python_timeout_seconds = 60;
inline constexpr std::size_t python_output_cap = std::size_t{1} << 20;
// The most of conda's first line read for its #! line.
inline constexpr std::size_t shebang_cap = 4096;

// The interpreter named on the #! line of `conda` (a regular file, opened
// without following links): an absolute path to an executable file, without
// arguments. Throws std::runtime_error (no #! line, a relative path or one
// with arguments, not executable) or std::system_error (cannot be read).
std::filesystem::path shebang_python(const std::filesystem::path& conda);

// The folder of the running binary (/proc/self/exe, links resolved).
// Throws std::runtime_error.
std::filesystem::path running_exe_dir();

// The interpreter: PREFIX/bin/python when `conda` is PREFIX/bin/conda or
// PREFIX/condabin/conda and that file is an executable regular file, else
// the absolute path on conda's #! line (without arguments). Then asks it,
// with `-I -c` (no shell, `env` as its whole environment, a timeout, capped
// output), for its purelib and sys.prefix. Throws std::runtime_error.
CondaPython find_conda_python(const std::filesystem::path& conda, const std::vector<std::string>& env);

// Whether conda-guard's folder is where the plugin looks first
// (PREFIX/bin of conda's Python); when not, the conda setting to make.
struct BinDirAdvice {
    std::filesystem::path exe_dir;  // where this conda-guard is
    bool beside_python = false;     // exe_dir is PREFIX/bin (same folder)
};

struct PluginInstalled {
    std::string version;              // the Version written
    std::filesystem::path package;    // PURELIB/conda_guard_plugin
    std::filesystem::path dist_info;  // PURELIB/conda_guard_plugin-VERSION.dist-info
    std::size_t files = 0;            // package files copied
    bool replaced = false;            // an earlier install of ours was replaced
    BinDirAdvice bin_dir;
};

// Installs the package from `source` as above, with Version `version`.
// Throws std::runtime_error (a foreign or linked destination, I/O errors);
// on error nothing of the new install is left behind.
PluginInstalled install_plugin(const CondaPython& python, const std::filesystem::path& source,
                               const std::string& version, const std::filesystem::path& exe_dir);

struct PluginRemoved {
    std::vector<std::filesystem::path> removed;  // empty: nothing of ours was there
};

// Removes PURELIB/conda_guard_plugin and every conda_guard_plugin-*.dist-info
// of ours (with whatever Python's import cache added inside them).
// Idempotent. Throws std::runtime_error, removing nothing, when any of them
// is not ours (a link, a file, or another installer's).
PluginRemoved uninstall_plugin(const CondaPython& python);

enum class PluginState {
    Loaded,        // conda's Python finds the entry point and imports the plugin at this version
    NotInstalled,  // neither the entry point nor the module
    Stale,         // something of it, but not all, or another version
};

struct PluginStatus {
    PluginState state = PluginState::NotInstalled;
    std::vector<std::string> problems;            // why not Loaded, one line each
    std::optional<std::string> installed_version; // the distribution's Version
    std::optional<std::string> module_file;       // conda_guard_plugin/plugin.py as Python finds it
    std::vector<std::string> entry_points;        // values of conda-guard in group conda
};

// Asks conda's Python (`-I -c`, as find_conda_python) whether it would load
// the plugin: the entry point conda-guard in group conda names
// conda_guard_plugin.plugin, its distribution's Version and the package's
// __version__ are `version`, the module file exists and
// `import conda_guard_plugin.core` succeeds. Throws std::runtime_error when
// the Python cannot be asked.
PluginStatus plugin_status(const CondaPython& python, const std::string& version,
                           const std::vector<std::string>& env);

}  // namespace condaguard::cli
