// conda-guard install|create|update|remove|env create|env update: conda run
// through the plugin's _bootstrap.py, the gate proven loaded before conda's
// main, against a tiny fake conda: a #! script naming /usr/bin/python3 whose
// Python finds, through PYTHONPATH, a package `conda` with exactly the names
// contract-wrapper.md point 4 lists (on pluggy, as conda's own are). Its main
// records, in the file FAKE_CONDA_RECORD, its arguments and which plugins
// offer each hook, honours no_plugins the way conda's main_subshell does, and
// exits FAKE_CONDA_STATUS.
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

using namespace condaguard::test;
using json = nlohmann::json;

namespace {

constexpr const char* system_python = "/usr/bin/python3";

// The fake conda package, file by file.
const std::map<std::string, std::string> fake_conda_files = {
    {"conda/__init__.py", "__version__ = '0.0.0.fake'\n"},
    {"conda/exceptions.py", "class CondaVerificationError(Exception):\n    pass\n"},
    {"conda/base/__init__.py", ""},
    // Environment beats condarc (as in conda), unless FAKE_CONDA_RC_WINS: a
    // conda reading no_plugins from somewhere the wrapper cannot override.
    {"conda/base/context.py",
     "import os\n"
     "from types import SimpleNamespace\n"
     "class Context:\n"
     "    quiet = False\n"
     "    def __init__(self):\n"
     "        self.plugins = SimpleNamespace(\n"
     "            condaguard_bin_dir=os.environ.get('CONDA_PLUGINS_CONDAGUARD_BIN_DIR', ''))\n"
     "        rc = os.environ.get('CONDARC', '')\n"
     "        from_rc = bool(rc) and 'no_plugins: true' in open(rc).read()\n"
     "        env = os.environ.get('CONDA_NO_PLUGINS')\n"
     "        self.no_plugins = from_rc if env is None or os.environ.get('FAKE_CONDA_RC_WINS') \\\n"
     "            else env.lower() == 'true'\n"
     "    @property\n"
     "    def plugin_manager(self):\n"
     "        from conda.plugins.manager import get_plugin_manager\n"
     "        return get_plugin_manager()\n"
     "context = Context()\n"},
    {"conda/plugins/__init__.py", "import pluggy\nhookimpl = pluggy.HookimplMarker('conda')\n"},
    {"conda/plugins/types.py",
     "from dataclasses import dataclass\n"
     "from typing import Any, Callable, Optional\n"
     "@dataclass\n"
     "class CondaSubcommand:\n"
     "    name: str\n"
     "    summary: str\n"
     "    action: Callable\n"
     "    configure_parser: Optional[Callable] = None\n"
     "@dataclass\n"
     "class CondaPostSolve:\n"
     "    name: str\n"
     "    action: Callable\n"
     "@dataclass\n"
     "class CondaPreCommand:\n"
     "    name: str\n"
     "    action: Callable\n"
     "    run_for: Any\n"},
    {"conda/plugins/manager.py",
     "import functools, os, sys\n"
     "import importlib.metadata\n"
     "import pluggy\n"
     "spec = pluggy.HookspecMarker('conda')\n"
     "class CondaSpecs:\n"
     "    @spec\n"
     "    def conda_subcommands(self): pass\n"
     "    @spec\n"
     "    def conda_post_solves(self): pass\n"
     "    @spec\n"
     "    def conda_pre_commands(self): pass\n"
     "class CondaPluginManager(pluggy.PluginManager):\n"
     "    def __init__(self):\n"
     "        super().__init__('conda')\n"
     "        self.add_hookspecs(CondaSpecs)\n"
     "    def register(self, plugin, name=None):\n"
     "        try:\n"
     "            return super().register(plugin, name)\n"
     "        except ValueError:\n"
     "            return None\n"
     "    def load_entrypoints(self, group):\n"
     "        for ep in importlib.metadata.entry_points(group=group):\n"
     "            try:\n"
     "                self.register(ep.load(), name=ep.name)\n"
     "            except Exception as e:\n"
     "                print(f'Error while loading conda entry point: {ep.name} ({e})', file=sys.stderr)\n"
     "    def disable_external_plugins(self):\n"
     "        for name, _ in self.list_name_plugin():\n"
     "            if not self.is_blocked(name):\n"
     "                self.set_blocked(name)\n"
     "@functools.cache\n"
     "def get_plugin_manager():\n"
     "    pm = CondaPluginManager()\n"
     "    for name in os.environ.get('FAKE_CONDA_BLOCK', '').split():\n"
     "        pm.set_blocked(name)\n"
     "    pm.load_entrypoints('conda')\n"
     "    return pm\n"},
    {"conda/cli/__init__.py", "from .main import main\n"},  // as conda's: the function shadows the module
    // Records before any work; FAKE_CONDA_SUBCOMMAND NAME runs the plugin
    // subcommand NAME with --version (what `conda guard --version` does).
    {"conda/cli/main.py",
     "import json, os, sys\n"
     "def main(*args):\n"
     "    args = args or tuple(sys.argv[1:])\n"
     "    from conda.base.context import context\n"
     "    pm = context.plugin_manager\n"
     "    if '--no-plugins' in args or context.no_plugins:\n"
     "        pm.disable_external_plugins()\n"
     "    hooks = {h: sorted(pm.get_name(i.plugin) for i in getattr(pm.hook, h).get_hookimpls())\n"
     "             for h in ('conda_post_solves', 'conda_pre_commands', 'conda_subcommands')}\n"
     "    try:\n"
     "        os.fstat(3)\n"
     "        fd3 = True\n"
     "    except OSError:\n"
     "        fd3 = False\n"
     "    record = {'args': list(args), 'argv0': sys.argv[0], 'hooks': hooks, 'fd3_open': fd3,\n"
     "              'bin_dir': context.plugins.condaguard_bin_dir,\n"
     "              'bootstrap_fd_env': os.environ.get('CONDAGUARD_BOOTSTRAP_FD')}\n"
     "    with open(os.environ['FAKE_CONDA_RECORD'], 'w') as f:\n"
     "        json.dump(record, f)\n"
     "    sub = os.environ.get('FAKE_CONDA_SUBCOMMAND')\n"
     "    if sub:\n"
     "        for result in pm.hook.conda_subcommands():\n"
     "            for s in result:\n"
     "                if s.name == sub:\n"
     "                    return s.action(('--version',))\n"
     "        return 99\n"
     "    return int(os.environ.get('FAKE_CONDA_STATUS', '0'))\n"},
};

constexpr const char* fake_conda_script =
    "#!/usr/bin/python3\nimport sys\nfrom conda.cli.main import main\nsys.exit(main())\n";

class GuardWrap : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto& [rel, text] : fake_conda_files) {
            stdfs::create_directories((py() / rel).parent_path());
            write_file(py() / rel, text);
        }
        stdfs::create_directories(t_ / "bin");
        write_file(conda(), fake_conda_script, 0755);
        // The fake conda alone: the plugin is nowhere, conda runs without it.
        const RunResult bare = run({conda().string(), "install", "x"}, env({}));
        ASSERT_EQ(bare.status, 0) << bare.err;
        ASSERT_EQ(record()["hooks"]["conda_post_solves"], json::array());
        stdfs::remove(record_file());
    }

    stdfs::path py() const { return t_ / "py"; }
    stdfs::path conda() const { return t_ / "bin" / "conda"; }
    stdfs::path record_file() const { return t_ / "record.json"; }
    json record() const { return json::parse(read_file(record_file())); }
    bool conda_ran() const { return stdfs::exists(record_file()); }

    // The child's environment: the fake conda importable, no conda-guard on
    // PATH or beside /usr/bin/python3, `extra` last.
    std::vector<std::string> env(std::vector<std::string> extra) const {
        std::vector<std::string> e{
            "PYTHONPATH=" + py().string(),
            "CONDA_EXE=" + conda().string(),
            "FAKE_CONDA_RECORD=" + record_file().string(),
            "PATH=/usr/bin:/bin",
            "HOME=" + (t_ / "home").string(),
            "PYTHONDONTWRITEBYTECODE=1",
        };
        e.insert(e.end(), extra.begin(), extra.end());
        return e;
    }
    RunResult wrap(std::vector<std::string> args, std::vector<std::string> extra = {},
                   const std::string& exe = conda_guard_exe()) const {
        args.insert(args.begin(), exe);
        return run(args, env(std::move(extra)));
    }

    TempDir t_;
};

// The plugin's three hooks, offered by exactly one registration.
void expect_gate_registered(const json& rec) {
    for (const char* hook : {"conda_post_solves", "conda_pre_commands", "conda_subcommands"})
        EXPECT_EQ(rec["hooks"][hook], json::array({"conda-guard"})) << hook << ": " << rec.dump();
}

}  // namespace

TEST_F(GuardWrap, A19_the_plugin_is_registered_and_proven_before_conda_main_runs) {
    const RunResult r = wrap({"install", "-n", "env1", "numpy"});
    EXPECT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(conda_ran()) << r.err;
    const json rec = record();
    expect_gate_registered(rec);
    EXPECT_EQ(rec["args"], json::array({"install", "-n", "env1", "numpy"}));
    EXPECT_EQ(rec["argv0"], conda().string());
    EXPECT_EQ(rec["fd3_open"], false);  // the bootstrap closed its pipe before main
    EXPECT_EQ(rec["bootstrap_fd_env"], nullptr);
    EXPECT_EQ(r.err, "");
}

TEST_F(GuardWrap, ArgumentsReachCondaUntouched) {
    const std::vector<std::vector<std::string>> cases = {
        {"install", "--help"},
        {"create", "-n", "e", "--dry-run", "--json", "a b", "--", "-x"},
        {"update", "--all", "-y"},
        {"remove", "-n", "e", "--all"},
        {"env", "create", "-f", "x.yml"},
        {"env", "update", "--help"},
        {"install"},
        {"install", "--", "x"},
        {"install", "-h"},
        {"install", "--version"},
        {"install", "update"},   // a word naming another conda-guard subcommand is conda's too
        {"create", "plugin", "install"},
        {"env", "create", "env", "update"},
        {"remove", "-ny", "--json=1", "x"},
    };
    for (const auto& args : cases) {
        stdfs::remove(record_file());
        const RunResult r = wrap(args);
        EXPECT_EQ(r.status, 0) << args[0] << ": " << r.err;
        ASSERT_TRUE(conda_ran()) << args[0] << ": " << r.err;
        EXPECT_EQ(record()["args"], json(args));
    }
}

TEST_F(GuardWrap, EnvAloneIsAUsageErrorAndHelpListsTheWrapper) {
    RunResult r = wrap({"env"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("'conda-guard env' needs a subcommand: create, update"), std::string::npos) << r.err;
    r = wrap({"env", "list"});
    EXPECT_EQ(r.status, 2);
    EXPECT_FALSE(conda_ran());
    r = wrap({"env", "--help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("Run `conda env create` (ARGS untouched, --help is conda's)"), std::string::npos) << r.out;
    r = wrap({"--help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("Run `conda install` (ARGS untouched, --help is conda's)"), std::string::npos) << r.out;
    EXPECT_FALSE(conda_ran());
}

TEST_F(GuardWrap, CondasExitStatusPassesThrough) {
    for (const int status : {1, 2, 7, 130}) {
        const RunResult r = wrap({"create", "-n", "e"}, {"FAKE_CONDA_STATUS=" + std::to_string(status)});
        EXPECT_EQ(r.status, status) << r.err;
    }
}

TEST_F(GuardWrap, A19_no_conda_never_runs_and_exits_2) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"missing", ""},
        {"not-a-script", "\x7f" "ELF\x02\x01\x01"},
        {"no-interpreter", "#!/nonexistent/python3\nprint('ran')\n"},
        {"relative", "#!python3\nprint('ran')\n"},
        {"with-arguments", "#!/usr/bin/python3 -I\nprint('ran')\n"},
    };
    for (const auto& [name, text] : cases) {
        const stdfs::path c = t_ / "bin" / name;
        if (!text.empty()) write_file(c, text, 0755);
        const RunResult r = wrap({"install", "x"}, {"CONDA_EXE=" + c.string()});
        EXPECT_EQ(r.status, 2) << name << ": " << r.err;
        EXPECT_NE(r.err.find("conda did not run"), std::string::npos) << name << ": " << r.err;
        EXPECT_EQ(r.out, "") << name;
        EXPECT_FALSE(conda_ran()) << name;
    }
    // No CONDA_EXE and no conda on PATH.
    const RunResult r = wrap({"install", "x"}, {"CONDA_EXE="});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("no conda: set CONDA_EXE, or put conda on PATH"), std::string::npos) << r.err;
}

TEST_F(GuardWrap, CondaOnPathIsUsedWithoutCondaExe) {
    const RunResult r = wrap({"install", "x"}, {"CONDA_EXE=", "PATH=relative:" + (t_ / "bin").string() + ":/usr/bin:/bin"});
    EXPECT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(conda_ran());
    expect_gate_registered(record());
}

TEST_F(GuardWrap, A19_no_plugins_among_the_arguments_is_refused) {
    for (const std::string arg : {"--no-plugins", "--no-plugins=1", "--no-plugin", "--no-pl"}) {
        const RunResult r = wrap({"install", "x", arg});
        EXPECT_EQ(r.status, 2) << arg;
        EXPECT_NE(r.err.find(arg + " would run conda without the gate"), std::string::npos) << r.err;
        EXPECT_FALSE(conda_ran()) << arg;
    }
}

TEST_F(GuardWrap, A19_conda_no_plugins_in_the_environment_or_condarc_is_overridden) {
    write_file(t_ / "condarc", "no_plugins: true\n");
    RunResult r = wrap({"install", "x"}, {"CONDA_NO_PLUGINS=true"});
    EXPECT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(conda_ran());
    expect_gate_registered(record());
    stdfs::remove(record_file());
    r = wrap({"install", "x"}, {"CONDARC=" + (t_ / "condarc").string()});
    EXPECT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(conda_ran());
    expect_gate_registered(record());
}

TEST_F(GuardWrap, A19_no_plugins_that_reaches_conda_anyway_ends_the_run_with_2) {
    // A conda that takes no_plugins from its condarc over the environment:
    // its main asks the plugin manager to drop every external plugin.
    write_file(t_ / "condarc", "no_plugins: true\n");
    const RunResult r = wrap({"install", "x"}, {"CONDARC=" + (t_ / "condarc").string(), "FAKE_CONDA_RC_WINS=1"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("conda was asked to run without plugins (no_plugins); the gate cannot run"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(conda_ran());  // main stopped before it recorded anything
}

TEST_F(GuardWrap, A19_a_blocked_plugin_is_not_proven_and_conda_never_runs) {
    const RunResult r = wrap({"install", "x"}, {"FAKE_CONDA_BLOCK=conda-guard"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("the gate was not proven loaded into conda"), std::string::npos) << r.err;
    EXPECT_FALSE(conda_ran());
}

TEST_F(GuardWrap, A19_a_plugin_that_cannot_be_imported_means_conda_never_runs) {
    // A conda-guard installed as meson does: BIN/conda-guard and
    // SHARE/condaguard/plugin/conda_guard_plugin, here without plugin.py.
    const stdfs::path bin = t_ / "inst" / "bin";
    const stdfs::path pkg = t_ / "inst" / "share" / "condaguard" / "plugin" / "conda_guard_plugin";
    stdfs::create_directories(bin);
    stdfs::create_directories(pkg);
    stdfs::copy_file(conda_guard_exe(), bin / "conda-guard");
    const stdfs::path source = CONDAGUARD_PLUGIN_SOURCE_DIR;
    stdfs::copy_file(source / "__init__.py", pkg / "__init__.py");
    stdfs::copy_file(source / "_bootstrap.py", pkg / "_bootstrap.py");
    RunResult r = wrap({"install", "x"}, {}, (bin / "conda-guard").string());
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("cannot load the plugin into conda: ModuleNotFoundError"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the gate was not proven loaded into conda"), std::string::npos) << r.err;
    EXPECT_FALSE(conda_ran());

    // One whose import raises.
    write_file(pkg / "plugin.py", "raise RuntimeError('broken')\n");
    r = wrap({"install", "x"}, {}, (bin / "conda-guard").string());
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("RuntimeError: broken"), std::string::npos) << r.err;
    EXPECT_FALSE(conda_ran());

    // And without the bootstrap itself.
    stdfs::remove(pkg / "_bootstrap.py");
    r = wrap({"install", "x"}, {}, (bin / "conda-guard").string());
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("_bootstrap.py is missing; conda did not run"), std::string::npos) << r.err;
    EXPECT_FALSE(conda_ran());
}

TEST_F(GuardWrap, ThePluginAlsoInstalledThroughItsEntryPointIsRegisteredOnce) {
    const stdfs::path info = py() / ("conda_guard_plugin-" CONDAGUARD_VERSION ".dist-info");
    stdfs::create_directories(info);
    write_file(info / "METADATA", "Metadata-Version: 2.1\nName: conda-guard-plugin\nVersion: " CONDAGUARD_VERSION "\n");
    write_file(info / "entry_points.txt", "[conda]\nconda-guard = conda_guard_plugin.plugin\n");
    const RunResult r = wrap({"install", "x"});
    EXPECT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(conda_ran());
    expect_gate_registered(record());
    EXPECT_EQ(r.err, "");  // the entry point loaded the very module the bootstrap imported
}

TEST_F(GuardWrap, ThePluginRunsThisCondaGuardThroughCondaPluginsCondaguardBinDir) {
    // A conda-guard elsewhere named by the user's own setting is not the one run.
    const RunResult r = wrap({"install", "x"},
                             {"FAKE_CONDA_SUBCOMMAND=guard", "CONDA_PLUGINS_CONDAGUARD_BIN_DIR=" + (t_ / "elsewhere").string()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "conda-guard (condaguard) " CONDAGUARD_VERSION "\n");
    ASSERT_TRUE(conda_ran());
    EXPECT_EQ(record()["bin_dir"], stdfs::path(conda_guard_exe()).parent_path().string());
}
