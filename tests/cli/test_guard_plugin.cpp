// conda-guard plugin install|uninstall|status against a stand-in conda: a
// `python3 -m venv --without-pip` environment (PREFIX/bin/python is a real
// Python with its own site-packages) with PREFIX/bin/conda a shell script.
// No conda is needed: conda loads plugins from the `conda` entry points of
// the distributions in its Python (conda-plugin.md §1), which is what the
// tests ask that Python for.
#include "../support/support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

using namespace condaguard::test;
using json = nlohmann::json;

namespace {

constexpr const char* system_python = "/usr/bin/python3";

class GuardPlugin : public ::testing::Test {
protected:
    void SetUp() override {
        const RunResult venv = run({system_python, "-m", "venv", "--without-pip", prefix().string()});
        ASSERT_EQ(venv.status, 0) << venv.err;
        write_file(prefix() / "bin/conda", "#!/bin/sh\nexit 0\n", 0755);
        const RunResult where = run({python().string(), "-I", "-c",
                                     "import sysconfig; print(sysconfig.get_paths()['purelib'], end='')"});
        ASSERT_EQ(where.status, 0) << where.err;
        purelib_ = where.out;
        ASSERT_TRUE(stdfs::is_directory(purelib_)) << purelib_;
    }

    stdfs::path prefix() const { return t_ / "prefix"; }
    stdfs::path python() const { return prefix() / "bin/python"; }
    stdfs::path conda() const { return prefix() / "bin/conda"; }
    stdfs::path package() const { return purelib_ / "conda_guard_plugin"; }
    stdfs::path dist_info() const { return purelib_ / ("conda_guard_plugin-" CONDAGUARD_VERSION ".dist-info"); }

    RunResult g(std::vector<std::string> args, std::vector<std::string> env = {}, const std::string& exe = {}) {
        return run_isolated(exe.empty() ? conda_guard_exe() : exe, std::move(args), t_ / "home", std::move(env));
    }
    RunResult plugin(const std::string& action, const std::string& exe = {}) {
        return g({"plugin", action, "--conda", conda().string(), "--json"}, {}, exe);
    }
    // What conda's Python says of the conda entry points and the plugin's core.
    RunResult ask(const std::string& code) { return run({python().string(), "-c", code}); }

    TempDir t_;
    stdfs::path purelib_;
};

json parse(const RunResult& r) {
    try {
        return json::parse(r.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what() << "\n" << r.out << r.err;
        return json::object();
    }
}

constexpr const char* list_entry_points =
    "import importlib.metadata as m; print([e.value for e in m.entry_points(group='conda') if e.name == "
    "'conda-guard'])";

}  // namespace

TEST_F(GuardPlugin, InstallIsLoadedUninstallRemovesIt) {
    RunResult r = plugin("status");
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_EQ(parse(r)["state"], "not-installed");

    r = plugin("install");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    json j = parse(r);
    EXPECT_EQ(j["plugin_version"], CONDAGUARD_VERSION);
    EXPECT_EQ(j["conda"]["found_by"], "beside conda");
    EXPECT_EQ(j["replaced"], false);
    EXPECT_FALSE(j["bin_dir"]["beside_python"].get<bool>());
    EXPECT_EQ(j["bin_dir"]["hint"], "conda config --set plugins.condaguard_bin_dir " +
                                        stdfs::path(conda_guard_exe()).parent_path().string());
    EXPECT_TRUE(stdfs::is_regular_file(package() / "plugin.py"));
    EXPECT_TRUE(stdfs::is_regular_file(package() / "_bootstrap.py"));  // what the wrapper runs
    EXPECT_FALSE(stdfs::exists(package() / "__pycache__"));
    EXPECT_EQ(read_file(dist_info() / "INSTALLER"), "conda-guard\n");
    EXPECT_EQ(read_file(dist_info() / "entry_points.txt"), "[conda]\nconda-guard = conda_guard_plugin.plugin\n");
    EXPECT_EQ(read_file(dist_info() / "METADATA"),
              "Metadata-Version: 2.1\nName: conda-guard-plugin\nVersion: " CONDAGUARD_VERSION "\n");

    r = plugin("status");
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    j = parse(r);
    EXPECT_EQ(j["state"], "loaded");
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["installed_version"], CONDAGUARD_VERSION);
    EXPECT_EQ(j["module_file"], (package() / "plugin.py").string());

    // What conda would see: the entry point, and the plugin's core imports.
    r = ask(list_entry_points);
    EXPECT_EQ(r.out, "['conda_guard_plugin.plugin']\n") << r.err;
    r = ask("import conda_guard_plugin.core as c; print(c.__name__)");
    EXPECT_EQ(r.out, "conda_guard_plugin.core\n") << r.err;

    // RECORD as pip writes it: every file with its sha256 (urlsafe base64,
    // no padding) and size, RECORD itself without.
    r = ask("import base64, csv, hashlib, os, sys\n"
            "base = sys.argv[1] if len(sys.argv) > 1 else None\n"
            "import importlib.metadata as m\n"
            "d = m.distribution('conda-guard-plugin')\n"
            "bad = []\n"
            "for f in d.files:\n"
            "    if f.hash is None:\n"
            "        bad += [] if f.name == 'RECORD' else [str(f)]\n"
            "        continue\n"
            "    data = f.read_binary()\n"
            "    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()\n"
            "    if f.hash.mode != 'sha256' or f.hash.value != h or f.size != len(data): bad.append(str(f))\n"
            "print(len(d.files), bad)\n");
    EXPECT_EQ(r.out, "8 []\n") << r.err;  // 4 modules (_bootstrap.py too), METADATA, entry_points.txt, INSTALLER, RECORD

    // Installing again replaces it (and removes Python's import cache with it).
    r = plugin("install");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(parse(r)["replaced"], true);
    EXPECT_FALSE(stdfs::exists(package() / "__pycache__"));

    r = plugin("uninstall");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(parse(r)["removed"], json({package().string(), dist_info().string()}));
    EXPECT_FALSE(stdfs::exists(package()));
    EXPECT_FALSE(stdfs::exists(dist_info()));
    EXPECT_TRUE(stdfs::is_empty(purelib_)) << "a temporary folder was left";
    r = plugin("status");
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_EQ(parse(r)["state"], "not-installed");
    EXPECT_EQ(ask(list_entry_points).out, "[]\n");

    // Idempotent.
    r = plugin("uninstall");
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(parse(r)["removed"], json::array());
    r = g({"plugin", "uninstall", "--conda", conda().string()});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("not installed"), std::string::npos) << r.out;
}

TEST_F(GuardPlugin, StatusTextSaysLoaded) {
    ASSERT_EQ(plugin("install").status, 0);
    const RunResult r = g({"plugin", "status", "--conda", conda().string()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "loaded: conda " + conda().string() + " loads conda-guard-plugin " CONDAGUARD_VERSION " from " +
                         (package() / "plugin.py").string() + "\n");
}

TEST_F(GuardPlugin, StaleWhenAnotherVersionOrPartlyThere) {
    ASSERT_EQ(plugin("install").status, 0);
    write_file(dist_info() / "METADATA", "Metadata-Version: 2.1\nName: conda-guard-plugin\nVersion: 0.0.1\n");
    RunResult r = plugin("status");
    EXPECT_EQ(r.status, 1) << r.out;
    json j = parse(r);
    EXPECT_EQ(j["state"], "stale");
    EXPECT_EQ(j["installed_version"], "0.0.1");

    ASSERT_EQ(plugin("install").status, 0);
    ASSERT_EQ(plugin("status").status, 0);
    stdfs::remove(package() / "core.py");  // the entry point is left, the import fails
    r = plugin("status");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(parse(r)["state"], "stale");
    r = g({"plugin", "status", "--conda", conda().string()});
    EXPECT_NE(r.out.find("import conda_guard_plugin.core failed"), std::string::npos) << r.out;
}

TEST_F(GuardPlugin, CondaFromEnvironmentAndItsShebang) {
    // A conda outside any bin/ folder: its interpreter comes from its #! line.
    const stdfs::path elsewhere = t_ / "tools/conda";
    stdfs::create_directories(elsewhere.parent_path());
    write_file(elsewhere, "#!" + python().string() + "\nimport sys\n", 0755);
    RunResult r = g({"plugin", "install", "--json"}, {"CONDA_EXE=" + elsewhere.string()});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const json j = parse(r);
    EXPECT_EQ(j["conda"]["found_by"], "conda's #! line");
    EXPECT_EQ(j["conda"]["python"], python().string());
    EXPECT_EQ(j["conda"]["purelib"], purelib_.string());
    EXPECT_TRUE(stdfs::is_regular_file(package() / "plugin.py"));

    // conda on PATH when neither --conda nor CONDA_EXE is given.
    r = g({"plugin", "status", "--json"}, {"CONDA_EXE=", "PATH=" + (prefix() / "bin").string() + ":/usr/bin:/bin"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(parse(r)["conda"]["conda"], conda().string());
}

TEST_F(GuardPlugin, A19_unusable_conda_is_an_error) {
    const stdfs::path env_shebang = t_ / "tools/conda";
    stdfs::create_directories(env_shebang.parent_path());
    write_file(env_shebang, "#!/usr/bin/env python3\n", 0755);
    RunResult r = g({"plugin", "install", "--conda", env_shebang.string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("not an absolute path to an interpreter without arguments"), std::string::npos) << r.err;

    r = g({"plugin", "status", "--conda", (t_ / "nowhere/conda").string(), "--json"});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(parse(r)["status"], "error");

    // A Python that fails: status is an error, not "not installed". (A
    // prefix of its own: the venv's bin/python is a link to the system's.)
    const stdfs::path broken = t_ / "broken";
    stdfs::create_directories(broken / "bin");
    write_file(broken / "bin/python", "#!/bin/sh\necho broken >&2\nexit 3\n", 0755);
    write_file(broken / "bin/conda", "#!/bin/sh\nexit 0\n", 0755);
    r = g({"plugin", "status", "--conda", (broken / "bin/conda").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("broken"), std::string::npos) << r.err;
}

TEST_F(GuardPlugin, A16_planted_link_at_the_package_is_not_followed) {
    const stdfs::path target = t_ / "victim";
    stdfs::create_directories(target);
    write_file(target / "keep.txt", "mine\n");
    stdfs::create_directory_symlink(target, package());

    RunResult r = plugin("install");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
    r = plugin("uninstall");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.err.find("not ours"), std::string::npos) << r.err;

    EXPECT_TRUE(stdfs::is_symlink(package()));
    EXPECT_EQ(read_file(target / "keep.txt"), "mine\n");
    EXPECT_EQ(std::distance(stdfs::directory_iterator(target), stdfs::directory_iterator()), 1);
    EXPECT_FALSE(stdfs::exists(dist_info()));
}

TEST_F(GuardPlugin, A16_planted_link_at_the_dist_info_is_not_followed) {
    const stdfs::path target = t_ / "victim";
    stdfs::create_directories(target);
    stdfs::create_directory_symlink(target, dist_info());
    const RunResult r = plugin("install");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_TRUE(stdfs::is_empty(target));
    EXPECT_FALSE(stdfs::exists(package()));
}

TEST_F(GuardPlugin, ForeignPluginIsNotRemoved) {
    stdfs::create_directories(package());
    write_file(package() / "plugin.py", "# pip's\n");
    stdfs::create_directories(purelib_ / "conda_guard_plugin-0.0.9.dist-info");
    write_file(purelib_ / "conda_guard_plugin-0.0.9.dist-info/INSTALLER", "pip\n");

    RunResult r = plugin("uninstall");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.err.find("installed by 'pip'"), std::string::npos) << r.err;
    r = plugin("install");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_EQ(read_file(package() / "plugin.py"), "# pip's\n");
    EXPECT_TRUE(stdfs::exists(purelib_ / "conda_guard_plugin-0.0.9.dist-info/INSTALLER"));

    // A package folder with no dist-info at all is not ours either.
    stdfs::remove_all(purelib_ / "conda_guard_plugin-0.0.9.dist-info");
    r = plugin("uninstall");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.err.find("has no dist-info written by conda-guard"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(package() / "plugin.py"), "# pip's\n");
}

// A meson-installed layout: BIN/conda-guard beside SHARE/condaguard/plugin.
class InstalledLayout : public GuardPlugin {
protected:
    void SetUp() override {
        GuardPlugin::SetUp();
        stdfs::create_directories(root() / "bin");
        std::error_code ec;
        stdfs::create_hard_link(conda_guard_exe(), exe(), ec);
        if (ec) stdfs::copy_file(conda_guard_exe(), exe());
        const stdfs::path src = stdfs::path(CONDAGUARD_PLUGIN_SOURCE_DIR);
        stdfs::create_directories(share());
        for (const char* f : {"__init__.py", "core.py", "plugin.py"}) stdfs::copy_file(src / f, share() / f);
        write_file(share() / "plugin.py", read_file(share() / "plugin.py") + "INSTALLED_COPY = True\n");
    }
    stdfs::path root() const { return t_ / "usr"; }
    std::string exe() const { return (root() / "bin/conda-guard").string(); }
    stdfs::path share() const { return root() / "share/condaguard/plugin/conda_guard_plugin"; }
};

TEST_F(InstalledLayout, InstalledFilesComeFirst) {
    const RunResult r = plugin("install", exe());
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(read_file(package() / "plugin.py").find("INSTALLED_COPY = True"), std::string::npos);
}

TEST_F(InstalledLayout, A16_link_in_the_plugin_files_is_refused) {
    stdfs::create_symlink("/etc/passwd", share() / "extra.py");
    const RunResult r = plugin("install", exe());
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.err.find("extra.py is a symbolic link"), std::string::npos) << r.err;
    EXPECT_FALSE(stdfs::exists(package()));
    EXPECT_TRUE(stdfs::is_empty(purelib_)) << "a temporary folder was left";
}

TEST_F(InstalledLayout, NothingToConfigureBesideCondasPython) {
    std::error_code ec;
    stdfs::create_hard_link(exe(), prefix() / "bin/conda-guard", ec);
    ASSERT_FALSE(ec) << ec.message();
    const RunResult r = g({"plugin", "install", "--conda", conda().string()}, {}, (prefix() / "bin/conda-guard").string());
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("where the plugin looks first: nothing to configure"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("conda config"), std::string::npos) << r.out;
}
