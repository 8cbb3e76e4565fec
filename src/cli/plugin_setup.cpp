#include "plugin_setup.hpp"

#include <condaguard/install/pkgs_dir.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/process.hpp>
#include <condaguard/sys/text.hpp>
#include <condaguard/trust/digest.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard::cli {

namespace stdfs = std::filesystem;

namespace {

// The largest plugin source file copied (they are a few dozen KiB).
constexpr std::size_t max_plugin_file_bytes = std::size_t{16} << 20;
constexpr std::size_t max_plugin_depth = 16;
constexpr std::size_t max_installer_bytes = 256;

bool is_executable_file(const stdfs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

bool is_folder(const stdfs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string dist_info_name(const std::string& version) {
    return fmt::format("{}-{}.dist-info", plugin_package, version);
}

bool is_dist_info_name(const std::string& name) {
    const std::string prefix = std::string(plugin_package) + "-";
    return name.starts_with(prefix) && name.ends_with(".dist-info") && name.size() > prefix.size() + 10;
}

// Runs conda's Python with `-I -c SCRIPT` and returns its standard output.
std::string ask_python(const stdfs::path& python, const std::string& script, const std::vector<std::string>& env) {
    const process::Outcome o = process::run({
        .argv = {python.string(), "-I", "-c", script},
        .env = env,
        .timeout = std::chrono::seconds(python_timeout_seconds),
        .stdout_cap = python_output_cap,
        .stderr_cap = python_output_cap,
    });
    if (o.ending == process::Ending::TimedOut)
        throw std::runtime_error(fmt::format("{} did not answer within {} s", python.string(), python_timeout_seconds));
    if (o.out.dropped != 0) throw std::runtime_error(fmt::format("{} said too much", python.string()));
    if (o.ending != process::Ending::Exited || o.exit_code != 0) {
        std::string err = o.err.data;
        while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
        const auto last = err.rfind('\n');
        if (last != std::string::npos) err = err.substr(last + 1);
        throw std::runtime_error(fmt::format("{} failed (status {}){}{}", python.string(), o.shell_status(),
                                             err.empty() ? "" : ": ", err));
    }
    return o.out.data;
}

nlohmann::json parse_answer(const stdfs::path& python, const std::string& text) {
    try {
        nlohmann::json j = parse_json(text, {.max_bytes = python_output_cap});
        if (!j.is_object()) throw std::runtime_error("not a JSON object");
        return j;
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("{} answered something else than expected: {}", python.string(),
                                             e.what()));
    }
}

std::string string_field(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string()) throw std::runtime_error(fmt::format("no string \"{}\" in the answer", key));
    return it->get<std::string>();
}

std::optional<std::string> optional_string(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

// A folder made under a fresh temporary name inside `dir`, removed again
// unless released.
class TempFolder {
public:
    TempFolder(int dir, const std::string& stem) : dir_(dir) {
        for (unsigned n = 0;; ++n) {
            name_ = fmt::format(".{}.tmp-{}-{}", stem, ::getpid(), n);
            if (::mkdirat(dir_, name_.c_str(), 0755) == 0) break;
            if (errno != EEXIST || n > 1000) throw fs::errno_error("mkdir " + name_);
        }
        fs::OpenedDir d = fs::open_dir_at(dir_, name_);
        if (!d.fd) throw std::runtime_error("the temporary folder " + name_ + " vanished");
        fd_ = std::move(d.fd);
    }
    ~TempFolder() {
        if (!name_.empty()) {
            try {
                remove_tree_at(dir_, name_);
            } catch (const std::exception&) {  // best effort: the error that brought us here wins
            }
        }
    }
    TempFolder(const TempFolder&) = delete;
    TempFolder& operator=(const TempFolder&) = delete;
    int fd() const noexcept { return fd_.get(); }
    const std::string& name() const noexcept { return name_; }
    // Moves it to `target` in the same folder: a new name, or swapped with
    // an existing folder (which then sits under the temporary name and is
    // removed by the destructor). Returns whether one was swapped out.
    bool place_as(const std::string& target) {
        if (::renameat2(dir_, name_.c_str(), dir_, target.c_str(), RENAME_NOREPLACE) == 0) {
            name_.clear();
            return false;
        }
        if (errno != EEXIST) throw fs::errno_error("rename " + name_ + " to " + target);
        if (::renameat2(dir_, name_.c_str(), dir_, target.c_str(), RENAME_EXCHANGE) != 0)
            throw fs::errno_error("exchange " + name_ + " and " + target);
        fd_.reset();
        return true;  // the old one is now name_: removed by the destructor
    }

private:
    int dir_;
    std::string name_;
    fs::Fd fd_;
};

struct RecordLine {
    std::string path;  // relative to purelib, '/'-separated
    Sha256Digest sha256{};
    std::uint64_t size = 0;
};

// RECORD's hash form (PEP 376 / PEP 627): urlsafe base64 without padding.
std::string urlsafe_b64_nopad(std::span<const unsigned char> bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const unsigned v = (unsigned{bytes[i]} << 16) | (unsigned{bytes[i + 1]} << 8) | bytes[i + 2];
        for (int s = 18; s >= 0; s -= 6) out += alphabet[(v >> s) & 63];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest == 1) {
        const unsigned v = unsigned{bytes[i]} << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
    } else if (rest == 2) {
        const unsigned v = (unsigned{bytes[i]} << 16) | (unsigned{bytes[i + 1]} << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
    }
    return out;
}

bool skipped_in_copy(const std::string& name) {
    return name == "__pycache__" || name == "tests" || name.ends_with(".pyc");
}

// Copies the folder `from` (entries sorted) into `to`, recording each file
// as PREFIX/NAME. Links and anything but files and folders are refused.
void copy_tree(int from, int to, const std::string& prefix, const stdfs::path& display, std::size_t depth,
               std::vector<RecordLine>& record) {
    if (depth > max_plugin_depth) throw std::runtime_error(display.string() + ": nested too deep");
    std::vector<std::string> names = fs::list_dir(from, display.string());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        if (skipped_in_copy(name)) continue;
        const stdfs::path shown = display / name;
        const fs::FileKind kind = fs::kind_at(from, name);
        if (kind == fs::FileKind::Directory) {
            fs::OpenedDir sub = fs::open_dir_at(from, name);
            if (!sub.fd) throw std::runtime_error(shown.string() + " " + std::string(fs::describe(sub.kind)));
            if (::mkdirat(to, name.c_str(), 0755) != 0) throw fs::errno_error("mkdir " + name);
            fs::OpenedDir out = fs::open_dir_at(to, name);
            if (!out.fd) throw std::runtime_error("the folder " + name + " vanished while copying");
            copy_tree(sub.fd.get(), out.fd.get(), prefix + name + "/", shown, depth + 1, record);
            continue;
        }
        if (kind != fs::FileKind::Regular)
            throw std::runtime_error(fmt::format("{} is {}: refused", shown.string(), fs::describe(kind)));
        fs::OpenedFile in = fs::open_untrusted_at(from, name, shown);
        fs::CappedRead data = fs::read_capped(in.fd.get(), max_plugin_file_bytes, shown.string());
        if (data.too_big) throw std::runtime_error(shown.string() + " is too large");
        fs::write_atomic_at(to, name, data.data, 0644, /*exclusive=*/true, shown);
        record.push_back({.path = prefix + name, .sha256 = sha256_bytes(data.data), .size = data.data.size()});
    }
}

// Writes one dist-info file and records it.
void write_recorded(int dir, const std::string& folder, const std::string& name, const std::string& data,
                    std::vector<RecordLine>& record) {
    fs::write_atomic_at(dir, name, data, 0644, /*exclusive=*/true, folder + "/" + name);
    record.push_back({.path = folder + "/" + name, .sha256 = sha256_bytes(data), .size = data.size()});
}

std::string record_text(const std::vector<RecordLine>& lines, const std::string& record_path) {
    std::string out;
    for (const auto& l : lines) out += fmt::format("{},sha256={},{}\n", l.path, urlsafe_b64_nopad(l.sha256), l.size);
    out += record_path + ",,\n";
    return out;
}

// What of the plugin is in PURELIB, and whose it is.
struct Found {
    fs::FileKind package = fs::FileKind::Missing;
    std::vector<std::string> ours;     // dist-info folders whose INSTALLER is conda-guard
    std::optional<std::string> foreign;  // why something there is not ours
};

Found survey(int purelib, const stdfs::path& shown) {
    Found f;
    f.package = fs::kind_at(purelib, plugin_package);
    for (const auto& name : fs::list_dir(purelib, shown.string())) {
        if (!is_dist_info_name(name)) continue;
        fs::OpenedDir d = fs::open_dir_at(purelib, name);
        if (!d.fd) {
            f.foreign = fmt::format("{} is {}", (shown / name).string(), fs::describe(d.kind));
            continue;
        }
        std::string installer;
        if (fs::kind_at(d.fd.get(), "INSTALLER") == fs::FileKind::Regular) {
            fs::OpenedFile in = fs::open_untrusted_at(d.fd.get(), "INSTALLER", shown / name / "INSTALLER");
            installer = fs::read_capped(in.fd.get(), max_installer_bytes, "INSTALLER").data;
            while (!installer.empty() && (installer.back() == '\n' || installer.back() == '\r')) installer.pop_back();
        }
        if (installer == plugin_installer)
            f.ours.push_back(name);
        else
            f.foreign = fmt::format("{} was installed by {}, not by {}", (shown / name).string(),
                                    installer.empty() ? "an unknown installer" : "'" + installer + "'",
                                    plugin_installer);
    }
    std::sort(f.ours.begin(), f.ours.end());
    const stdfs::path package = shown / plugin_package;
    if (!f.foreign) {
        if (f.package != fs::FileKind::Missing && f.package != fs::FileKind::Directory)
            f.foreign = fmt::format("{} is {}", package.string(), fs::describe(f.package));
        else if (f.package == fs::FileKind::Directory && f.ours.empty())
            f.foreign = fmt::format("{} has no dist-info written by {}", package.string(), plugin_installer);
    }
    return f;
}

}  // namespace

stdfs::path find_plugin_source(const stdfs::path& exe_dir, const stdfs::path& source_tree) {
    const stdfs::path installed = exe_dir / ".." / "share" / "condaguard" / "plugin" / plugin_package;
    if (is_folder(installed)) return installed.lexically_normal();
    if (!source_tree.empty() && is_folder(source_tree)) return source_tree;
    throw std::runtime_error(fmt::format("the plugin's files are neither in {} nor in {}",
                                         installed.lexically_normal().string(),
                                         source_tree.empty() ? "a source tree" : source_tree.string()));
}

stdfs::path choose_conda(const std::string& option, const std::map<std::string, std::string>& variables) {
    if (!option.empty()) return option;
    if (auto it = variables.find("CONDA_EXE"); it != variables.end() && !it->second.empty()) return it->second;
    if (auto it = variables.find("PATH"); it != variables.end()) {
        std::string_view path = it->second;
        while (!path.empty()) {
            const auto colon = path.find(':');
            const std::string_view dir = path.substr(0, colon);
            path = colon == std::string_view::npos ? std::string_view() : path.substr(colon + 1);
            if (dir.empty() || dir.front() != '/') continue;
            const stdfs::path candidate = stdfs::path(dir) / "conda";
            if (is_executable_file(candidate)) return candidate;
        }
    }
    throw std::runtime_error("no conda: give --conda CONDA_EXE, set CONDA_EXE, or put conda on PATH");
}

stdfs::path shebang_python(const stdfs::path& conda) {
    // Only the first line matters: one read of at most shebang_cap bytes
    // (a regular file gives all it has up to that).
    const fs::OpenedFile f = fs::open_untrusted(conda);
    std::string head(shebang_cap, '\0');
    const ssize_t n = ::read(f.fd.get(), head.data(), head.size());
    if (n < 0) throw fs::errno_error("read " + conda.string());
    head.resize(static_cast<std::size_t>(n));
    if (!head.starts_with("#!"))
        throw std::runtime_error(fmt::format("{} has no #! line and no python beside it", conda.string()));
    const auto eol = head.find('\n');
    if (eol == std::string::npos)
        throw std::runtime_error(fmt::format("{}: its #! line is longer than {} bytes", conda.string(), shebang_cap));
    std::string line = head.substr(2, eol - 2);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    const auto last = line.find_last_not_of(" \t");
    line = first == std::string::npos ? std::string() : line.substr(first, last - first + 1);
    if (line.empty() || line.front() != '/' || line.find_first_of(" \t") != std::string::npos)
        throw std::runtime_error(fmt::format(
            "{}: its #! line \"{}\" is not an absolute path to an interpreter without arguments", conda.string(),
            line));
    if (!is_executable_file(line))
        throw std::runtime_error(fmt::format("{}: its #! line names {}, which is not an executable file",
                                             conda.string(), line));
    return line;
}

stdfs::path running_exe_dir() {
    std::error_code ec;
    const stdfs::path exe = stdfs::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("cannot find where this program is: /proc/self/exe: " + ec.message());
    return exe.parent_path();
}

CondaPython find_conda_python(const stdfs::path& conda, const std::vector<std::string>& env) {
    CondaPython py;
    std::error_code ec;
    py.conda = stdfs::canonical(conda, ec);
    if (ec) throw std::runtime_error(fmt::format("{}: {}", conda.string(), ec.message()));
    if (!is_executable_file(py.conda))
        throw std::runtime_error(fmt::format("{} is not an executable file", conda.string()));
    const stdfs::path dir = py.conda.parent_path();
    const stdfs::path beside = dir.parent_path() / "bin" / "python";
    if ((dir.filename() == "bin" || dir.filename() == "condabin") && is_executable_file(beside)) {
        py.python = beside;
        py.found_by = "beside conda";
    } else {
        py.python = shebang_python(py.conda);
        py.found_by = "conda's #! line";
    }
    static const std::string script =
        "import json, sys, sysconfig\n"
        "print(json.dumps({'purelib': sysconfig.get_paths()['purelib'], 'prefix': sys.prefix}))\n";
    const nlohmann::json j = parse_answer(py.python, ask_python(py.python, script, env));
    try {
        py.purelib = string_field(j, "purelib");
        py.prefix = string_field(j, "prefix");
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("{}: {}", py.python.string(), e.what()));
    }
    if (!py.purelib.is_absolute() || !py.prefix.is_absolute())
        throw std::runtime_error(fmt::format("{} gave a relative purelib or prefix", py.python.string()));
    return py;
}

PluginInstalled install_plugin(const CondaPython& python, const stdfs::path& source, const std::string& version,
                               const stdfs::path& exe_dir) {
    PluginInstalled done;
    done.version = version;
    done.package = python.purelib / plugin_package;
    const std::string info = dist_info_name(version);
    done.dist_info = python.purelib / info;

    const fs::Fd purelib = fs::open_dir(python.purelib);
    const Found found = survey(purelib.get(), python.purelib);
    if (found.foreign) throw std::runtime_error(*found.foreign + ": not ours, left as it is");

    const fs::Fd from = fs::open_dir(source);
    std::vector<RecordLine> record;
    TempFolder package(purelib.get(), plugin_package);
    copy_tree(from.get(), package.fd(), std::string(plugin_package) + "/", source, 0, record);
    done.files = record.size();
    if (std::none_of(record.begin(), record.end(),
                     [](const RecordLine& l) { return l.path == std::string(plugin_package) + "/plugin.py"; }))
        throw std::runtime_error(fmt::format("{} has no plugin.py: not the plugin's folder", source.string()));

    TempFolder dist(purelib.get(), info);
    write_recorded(dist.fd(), info, "METADATA",
                   fmt::format("Metadata-Version: 2.1\nName: {}\nVersion: {}\n", plugin_dist_name, version), record);
    write_recorded(dist.fd(), info, "entry_points.txt",
                   fmt::format("[{}]\n{} = {}\n", plugin_entry_point_group, plugin_entry_point_name,
                               plugin_entry_point_module),
                   record);
    write_recorded(dist.fd(), info, "INSTALLER", std::string(plugin_installer) + "\n", record);
    const std::string record_path = info + "/RECORD";
    fs::write_atomic_at(dist.fd(), "RECORD", record_text(record, record_path), 0644, /*exclusive=*/true,
                        python.purelib / record_path);

    // The package first: a dist-info without its package is what status
    // calls stale, never a package that conda cannot find.
    done.replaced = package.place_as(plugin_package);
    done.replaced = dist.place_as(info) || done.replaced;
    for (const auto& old : found.ours)
        if (old != info) remove_tree_at(purelib.get(), old);
    if (::fsync(purelib.get()) != 0) throw fs::errno_error("fsync " + python.purelib.string());

    done.bin_dir.exe_dir = exe_dir;
    std::error_code ec;
    done.bin_dir.beside_python = stdfs::equivalent(exe_dir, python.prefix / "bin", ec) && !ec;
    return done;
}

PluginRemoved uninstall_plugin(const CondaPython& python) {
    PluginRemoved done;
    const fs::Fd purelib = fs::open_dir(python.purelib);
    const Found found = survey(purelib.get(), python.purelib);
    if (found.foreign) throw std::runtime_error(*found.foreign + ": not ours, left as it is");
    if (found.package == fs::FileKind::Directory) {
        remove_tree_at(purelib.get(), plugin_package);
        done.removed.push_back(python.purelib / plugin_package);
    }
    for (const auto& name : found.ours) {
        remove_tree_at(purelib.get(), name);
        done.removed.push_back(python.purelib / name);
    }
    if (!done.removed.empty() && ::fsync(purelib.get()) != 0) throw fs::errno_error("fsync " + python.purelib.string());
    return done;
}

PluginStatus plugin_status(const CondaPython& python, const std::string& version,
                           const std::vector<std::string>& env) {
    // Python 3.8 and 3.9 return a dict from entry_points(); 3.10+ has select().
    static const std::string script =
        "import json, os, sys\n"
        "import importlib.metadata as m, importlib.util\n"
        "r = {'entry_points': [], 'dist_version': None, 'module_file': None, 'module_version': None,\n"
        "     'import_error': None}\n"
        "eps = m.entry_points()\n"
        "eps = eps.select(group='conda') if hasattr(eps, 'select') else eps.get('conda', [])\n"
        "r['entry_points'] = sorted(e.value for e in eps if e.name == 'conda-guard')\n"
        "try:\n"
        "    r['dist_version'] = m.version('conda-guard-plugin')\n"
        "except m.PackageNotFoundError:\n"
        "    pass\n"
        "try:\n"
        "    spec = importlib.util.find_spec('conda_guard_plugin.plugin')\n"
        "    if spec is not None and spec.origin and os.path.isfile(spec.origin):\n"
        "        r['module_file'] = spec.origin\n"
        "    import conda_guard_plugin, conda_guard_plugin.core\n"
        "    v = getattr(conda_guard_plugin, '__version__', None)\n"
        "    r['module_version'] = v if isinstance(v, str) else None\n"
        "except Exception as e:\n"
        "    r['import_error'] = ' '.join(f'{type(e).__name__}: {e}'.split())\n"
        "print(json.dumps(r))\n";
    const nlohmann::json j = parse_answer(python.python, ask_python(python.python, script, env));
    PluginStatus s;
    if (auto it = j.find("entry_points"); it != j.end() && it->is_array())
        for (const auto& e : *it)
            if (e.is_string()) s.entry_points.push_back(e.get<std::string>());
    s.installed_version = optional_string(j, "dist_version");
    s.module_file = optional_string(j, "module_file");
    const auto module_version = optional_string(j, "module_version");
    const auto import_error = optional_string(j, "import_error");

    const bool has_entry = std::find(s.entry_points.begin(), s.entry_points.end(), plugin_entry_point_module) !=
                           s.entry_points.end();
    if (s.entry_points.empty() && !s.module_file && !s.installed_version) {
        s.state = PluginState::NotInstalled;
        s.problems.push_back(fmt::format("no entry point {} in group {} and no module {}", plugin_entry_point_name,
                                         plugin_entry_point_group, plugin_entry_point_module));
        return s;
    }
    if (!has_entry)
        s.problems.push_back(fmt::format("no entry point {} = {} in group {}", plugin_entry_point_name,
                                         plugin_entry_point_module, plugin_entry_point_group));
    if (s.entry_points.size() > 1)
        s.problems.push_back(fmt::format("{} entry points named {} in group {}", s.entry_points.size(),
                                         plugin_entry_point_name, plugin_entry_point_group));
    if (s.installed_version != version)
        s.problems.push_back(fmt::format("{} is at version {}, this conda-guard is {}", plugin_dist_name,
                                         s.installed_version.value_or("(none)"), version));
    if (!s.module_file) s.problems.push_back(fmt::format("no module file for {}", plugin_entry_point_module));
    if (import_error) s.problems.push_back("import conda_guard_plugin.core failed: " + *import_error);
    else if (module_version != version)
        s.problems.push_back(fmt::format("conda_guard_plugin.__version__ is {}, this conda-guard is {}",
                                         module_version.value_or("(none)"), version));
    s.state = s.problems.empty() ? PluginState::Loaded : PluginState::Stale;
    return s;
}

}  // namespace condaguard::cli
