"""The plugin end to end: the stand-in conda (standin_conda/, which loads the
plugin from its entry point as conda does and links by conda's cache reuse
rules) with the plugin put in by the real `conda-guard plugin install`,
against signed channels made by the real conda-sign / conda-guard and served
over HTTP on 127.0.0.1. One test per install threat of threats.md; each
refusal must exit 1 with CondaVerificationError naming the file and the
reason, and leave the prefix and the package cache exactly as they were."""

import hashlib
import json
import os
import shutil
import tempfile
import time
import unittest

from . import standin_env as se

_module = {}


def setUpModule():
    if not se.available():
        raise unittest.SkipTest("CONDA_GUARD_EXE / CONDA_SIGN_EXE not set, or no pluggy for /usr/bin/python3")
    _module["tmp"] = tempfile.TemporaryDirectory(prefix="e2e-conda.")
    install = se.CondaInstall(_module["tmp"].name)
    probe = se.Workspace(os.path.join(_module["tmp"].name, "probe"), install)
    r = install.install_plugin(probe.env)
    if r.returncode != 0:
        raise AssertionError(f"conda-guard plugin install failed: {r.stdout}{r.stderr}")
    _module["install"] = install


def tearDownModule():
    if "tmp" in _module:
        _module["tmp"].cleanup()


SIGNED = "share/hello.txt"


class EndToEnd(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="e2e.")
        self.ws = se.Workspace(self.tmp.name, _module["install"])
        self.www = os.path.join(self.tmp.name, "www")
        self.noarch = os.path.join(self.www, "chan", "noarch")
        self.server = se.Server(self.www)
        self.addCleanup(self.server.close)
        self.addCleanup(self.tmp.cleanup)
        self.ws.keygen("chan")
        self.base = se.build_package(self.noarch, "base")
        self.dep = se.build_package(self.noarch, "dep", fmt=".conda")
        self.hello = se.build_package(self.noarch, "hello", depends=["dep"],
                                      files={SIGNED: b"hello, signed bytes\n", "bin/hello": b"#!/bin/sh\necho hi\n"})
        self.index("chan", "demo", os.path.join(self.www, "chan"))
        self.ws.policy(f"channels:\n  - match: {self.channel}\n    keys: [chan]\n    index: required\n"
                       "    channel_id: demo\n")
        # An environment that exists, with packages installed through the gate
        # (dep among them: the gate places every VALID package of a request,
        # so a refused request of hello alone leaves the cache as it was).
        r = self.conda("create", "-n", "x", "-y", "base", "dep")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.prefix = os.path.join(self.ws.envs, "x")
        self.server.requests.clear()

    @property
    def channel(self):
        return f"{self.server.url}/chan"

    def index(self, key, channel_id, folder, *extra):
        r = self.ws.guard("index", folder, "--sign", key, "--channel-id", channel_id, "--sign-packages", *extra)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def conda(self, *args, env=None):
        return self.ws.conda(*args[:1], "-c", self.channel, "--override-channels", *args[1:], env=env)

    def states(self):
        return se.snapshot(self.prefix), se.snapshot(self.ws.pkgs)

    def assert_refused(self, r, before, *fragments):
        """Exit 1, conda's CondaVerificationError line naming each fragment,
        prefix and package cache as before, nothing linked."""
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("CondaVerificationError: ", r.stderr)
        for f in fragments:
            self.assertIn(f, r.stderr)
        self.assertNotIn("ERROR REPORT", r.stderr)
        self.assertEqual(self.states(), before)

    def conda_downloads(self):
        """Requests made by the stand-in (urllib) for package files."""
        return [q["path"] for q in self.server.requests
                if q["agent"].startswith("Python-urllib") and q["path"].endswith((".conda", ".tar.bz2"))]

    def installed_bytes(self, rel=SIGNED):
        with open(os.path.join(self.prefix, rel), "rb") as f:
            return f.read()

    # -- the signed path -------------------------------------------------

    def test_signed_install_links_the_verified_folder_and_conda_downloads_nothing(self):
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("conda-guard: 1 package verified and placed", r.stderr)
        self.assertEqual(self.installed_bytes(), b"hello, signed bytes\n")
        meta = os.path.join(self.prefix, "conda-meta", "hello-1.0-0.json")
        with open(meta) as f:
            self.assertEqual(json.load(f)["extracted_package_dir"], os.path.join(self.ws.pkgs, "hello-1.0-0"))
        self.assertEqual(self.conda_downloads(), [], "the gate fetched; conda fetched nothing")
        self.assertNotIn("Downloading and Extracting", r.stdout)
        self.assertTrue(any(p.endswith("hello-1.0-0.tar.bz2") for p in self.server.paths()))

    def test_explicit_file_of_signed_packages_installs(self):
        with open(self.hello, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        spec = os.path.join(self.tmp.name, "env.txt")
        with open(spec, "w") as f:
            f.write(f"@EXPLICIT\n{self.channel}/noarch/hello-1.0-0.tar.bz2#{digest}\n")
        r = self.ws.conda("install", "-n", "x", "--file", spec)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.installed_bytes(), b"hello, signed bytes\n")
        self.assertEqual(self.conda_downloads(), [])

    # -- threats ---------------------------------------------------------

    def test_A1_unsigned_index_refused(self):
        os.unlink(os.path.join(self.noarch, "repodata.json.sig"))
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "noarch/repodata.json", "MISSING_SIG")

    def test_A2_missing_package_signature_refused(self):
        os.unlink(self.hello + ".sig")
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "hello-1.0-0.tar.bz2", "MISSING_SIG")

    def test_A3_unknown_key_refused(self):
        os.unlink(os.path.join(self.ws.keys, "chan.pub"))
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "noarch/repodata.json", "chan")
        self.assertIn("MISSING_KEY", r.stderr)

    def test_A5_package_signed_by_a_key_the_channel_does_not_allow_refused(self):
        self.ws.keygen("evil")
        r = self.ws.sign("-i", "evil", self.hello)  # replaces hello's .sig
        self.assertEqual(r.returncode, 0, r.stderr)
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "hello-1.0-0.tar.bz2", "UNTRUSTED_KEY")

    def test_A7_signature_replayed_onto_another_file_name_refused(self):
        time.sleep(1.1)
        v2 = se.build_package(self.noarch, "hello", version="2.0", depends=["dep"],
                              files={SIGNED: b"hello 2.0\n"})
        self.index("chan", "demo", os.path.join(self.www, "chan"))
        shutil.copyfile(self.hello, v2)  # 1.0's bytes and signature served as 2.0
        shutil.copyfile(self.hello + ".sig", v2 + ".sig")
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "hello-2.0-0.tar.bz2", "INVALID")

    def test_A8_edited_index_refused(self):
        path = os.path.join(self.noarch, "repodata.json")
        with open(path) as f:
            index = json.load(f)
        index["packages"]["hello-1.0-0.tar.bz2"]["depends"].append("base")
        with open(path, "w") as f:
            json.dump(index, f)
        later = time.time() + 10  # newer than what was served: no 304 from the validators
        os.utime(path, (later, later))
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "noarch/repodata.json", "INVALID")

    def _replace_index(self, saved):
        """Serves a saved repodata.json + .sig again, newer on disk than the
        one served before (so that no validator answers 304)."""
        for name, data in saved.items():
            path = os.path.join(self.noarch, name)
            with open(path, "wb") as f:
                f.write(data)
            later = time.time() + 10
            os.utime(path, (later, later))

    def _saved_index(self):
        out = {}
        for name in ("repodata.json", "repodata.json.sig"):
            with open(os.path.join(self.noarch, name), "rb") as f:
                out[name] = f.read()
        return out

    def test_A9_rollback_to_an_older_signed_index_refused(self):
        old = self._saved_index()
        time.sleep(1.1)
        self.index("chan", "demo", os.path.join(self.www, "chan"))
        r = self.conda("create", "-n", "y", "-y", "dep")  # the gate sees the newer index
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self._replace_index(old)
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "noarch/repodata.json")
        self.assertIn("ROLLBACK", r.stderr)

    def test_A10_expired_index_refused(self):
        time.sleep(1.1)
        self.index("chan", "demo", os.path.join(self.www, "chan"), "--expires", "1s")
        time.sleep(2.1)
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "noarch/repodata.json")
        self.assertIn("EXPIRED", r.stderr)

    def test_A11_records_from_another_index_generation_refused(self):
        old = self._saved_index()["repodata.json"]
        time.sleep(1.1)
        os.unlink(self.hello + ".sig")
        se.build_package(self.noarch, "hello", depends=["dep"], files={SIGNED: b"rebuilt hello\n"})
        self.index("chan", "demo", os.path.join(self.www, "chan"))
        # conda (urllib) is served the previous generation's records, the gate the current one.
        self.server.override = lambda path, agent: old if (
            agent.startswith("Python-urllib") and path.endswith("/noarch/repodata.json")) else None
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "hello-1.0-0.tar.bz2", "INVALID", "sha256")

    def test_A15_explicit_file_naming_an_unsigned_package_refused(self):
        loose = se.build_package(os.path.join(self.tmp.name, "loose", "noarch"), "hello",
                                 files={SIGNED: b"never signed\n"})
        spec = os.path.join(self.tmp.name, "env.txt")
        with open(spec, "w") as f:
            f.write(f"@EXPLICIT\n{loose}\n")
        before = self.states()
        r = self.ws.conda("install", "-n", "x", "--file", spec)
        self.assert_refused(r, before, "hello-1.0-0.tar.bz2")

    def test_A15_package_path_argument_refused(self):
        loose = se.build_package(os.path.join(self.tmp.name, "loose", "noarch"), "hello",
                                 files={SIGNED: b"never signed\n"})
        before = self.states()
        r = self.ws.conda("install", "-n", "x", loose)
        self.assert_refused(r, before, "hello-1.0-0.tar.bz2")

    def test_A15_explicit_url_without_signature_refused(self):
        os.unlink(self.hello + ".sig")
        spec = os.path.join(self.tmp.name, "env.txt")
        with open(spec, "w") as f:
            f.write(f"@EXPLICIT\n{self.channel}/noarch/hello-1.0-0.tar.bz2\n")
        before = self.states()
        r = self.ws.conda("install", "-n", "x", "--file", spec)
        self.assert_refused(r, before, "hello-1.0-0.tar.bz2", "MISSING_SIG")
        self.assertEqual(self.conda_downloads(), [])

    def test_A19_missing_verifier_refused(self):
        empty = os.path.join(self.tmp.name, "nobin")
        os.mkdir(empty)
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello", env={"CONDA_PLUGINS_CONDAGUARD_BIN_DIR": empty})
        self.assert_refused(r, before, "conda-guard not found in " + empty)

    def test_A19_verifier_answering_nonsense_refused(self):
        bad = os.path.join(self.tmp.name, "badbin")
        os.mkdir(bad)
        with open(os.path.join(bad, "conda-guard"), "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\necho '{\"status\": \"ok\"}'\nexit 0\n")
        os.chmod(os.path.join(bad, "conda-guard"), 0o755)
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello", env={"CONDA_PLUGINS_CONDAGUARD_BIN_DIR": bad})
        self.assert_refused(r, before, "conda-guard gate (exit 0) answered something else")

    def test_A22_other_channel_served_in_its_place_refused(self):
        self.ws.keygen("other")
        other = os.path.join(self.tmp.name, "other")
        se.build_package(os.path.join(other, "noarch"), "hello", depends=["dep"], files={SIGNED: b"other's\n"})
        se.build_package(os.path.join(other, "noarch"), "dep", fmt=".conda")
        self.index("other", "other", other)
        shutil.rmtree(self.noarch)
        shutil.copytree(os.path.join(other, "noarch"), self.noarch)
        for name in os.listdir(self.noarch):  # newer than what was served (no 304)
            later = time.time() + 10
            os.utime(os.path.join(self.noarch, name), (later, later))
        before = self.states()
        r = self.conda("install", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, "noarch/repodata.json")
        self.assertRegex(r.stderr, r"UNTRUSTED_KEY|other")

    # -- A14: what conda would reuse from the package cache ----------------

    def _claimant(self, name, alter):
        """PKGS/NAME: a copy of hello's extracted folder (from a clean cache)
        whose share/hello.txt is `alter` and whose paths.json agrees."""
        clean = os.path.join(self.tmp.name, "clean-pkgs")
        r = self.ws.conda("create", "-p", os.path.join(self.tmp.name, "scratch"), "-y", "-c", self.channel,
                          "--override-channels", "hello", env={"CONDA_PKGS_DIRS": clean})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        folder = os.path.join(self.ws.pkgs, name)
        shutil.copytree(os.path.join(clean, "hello-1.0-0"), folder)
        with open(os.path.join(folder, SIGNED), "wb") as f:
            f.write(alter)
        paths_json = os.path.join(folder, "info", "paths.json")
        with open(paths_json) as f:
            paths = json.load(f)
        for p in paths["paths"]:
            if p["_path"] == SIGNED:
                p["sha256"], p["size_in_bytes"] = hashlib.sha256(alter).hexdigest(), len(alter)
        with open(paths_json, "w") as f:
            json.dump(paths, f)
        return folder

    def _assert_signed_or_refused(self, r, folder_name, removed=True):
        if r.returncode == 0:
            self.assertEqual(self.installed_bytes(), b"hello, signed bytes\n", r.stderr)
            if removed:  # the user is told which folder went
                self.assertIn(f"conda-guard: removed {os.path.join(self.ws.pkgs, folder_name)} from the "
                              "package cache: it claimed hello-1.0-0", r.stderr)
        else:
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("CondaVerificationError: ", r.stderr)
            self.assertIn(folder_name, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.prefix, SIGNED)))

    def test_A14_planted_sibling_folder_never_linked(self):
        self._claimant("hello-1.0-0.old", b"planted sibling\n")
        r = self.conda("install", "-n", "x", "-y", "hello")
        self._assert_signed_or_refused(r, "hello-1.0-0.old")

    def test_A14_leftover_temporary_folder_never_linked(self):
        self._claimant(".tmp-x", b"leftover\n")
        r = self.conda("install", "-n", "x", "-y", "hello")
        self._assert_signed_or_refused(r, ".tmp-x")

    def test_A14_tampered_extracted_folder_never_linked(self):
        self._claimant("hello-1.0-0", b"tampered in the cache\n")
        r = self.conda("install", "-n", "x", "-y", "hello")
        self._assert_signed_or_refused(r, "hello-1.0-0", removed=False)  # replaced, not a claimant

    def test_A14_planted_folder_in_another_package_directory_never_linked(self):
        """A claimant in a second package directory conda searches: without the
        gate conda links it; the gate moves it out and conda links the
        verified folder."""
        folder = self._claimant("hello-1.0-0.old", b"planted elsewhere\n")
        second = os.path.join(self.tmp.name, "pkgs2")
        os.mkdir(second)
        open(os.path.join(second, "urls.txt"), "w").close()
        planted = os.path.join(second, "hello-1.0-0.old")
        shutil.move(folder, planted)
        dirs = {"CONDA_PKGS_DIRS": f"{self.ws.pkgs},{second}"}
        r = self.conda("create", "-n", "ctl", "-y", "hello", "--no-plugins", env=dirs)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(self.ws.envs, "ctl", SIGNED), "rb") as f:
            self.assertEqual(f.read(), b"planted elsewhere\n", "without the gate it is linked")
        r = self.conda("install", "-n", "x", "-y", "hello", env=dirs)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.installed_bytes(), b"hello, signed bytes\n")
        self.assertFalse(os.path.lexists(planted), "the gate moved the claimant out")

    def test_A14_stand_in_links_a_planted_sibling_without_the_plugin(self):
        """The stand-in is faithful: without the gate, the planted folder is
        what conda links (conda-plugin.md §4, seen with real conda)."""
        self._claimant("hello-1.0-0.old", b"planted sibling\n")
        r = self.conda("install", "-n", "x", "-y", "hello", "--no-plugins")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.installed_bytes(), b"planted sibling\n")

    # -- plugin loading --------------------------------------------------

    def test_a_plugin_whose_import_raises_is_skipped_with_one_line(self):
        extra = os.path.join(self.tmp.name, "extra")
        dist = os.path.join(extra, "broken_plugin-1.0.dist-info")
        os.makedirs(dist)
        with open(os.path.join(dist, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
        with open(os.path.join(dist, "entry_points.txt"), "w") as f:
            f.write("[conda]\nbroken = broken_plugin\n")
        with open(os.path.join(extra, "broken_plugin.py"), "w") as f:
            f.write("raise RuntimeError('boom')\n")
        os.unlink(self.hello + ".sig")
        r = self.conda("install", "-n", "x", "-y", "hello", env={"PYTHONPATH": extra})
        self.assertIn("Error while loading conda entry point: broken (boom)", r.stderr)
        self.assertEqual(r.returncode, 1, "conda-guard still loaded and refusing")
        self.assertIn("MISSING_SIG", r.stderr)

    def test_contract_names_for_the_wrappers_bootstrap(self):
        """contract-wrapper.md point 4: the names the bootstrap uses exist
        and behave as in conda (register returns None when the entry point
        already registered the plugin, under the module's name; disable_external_plugins replaceable
        on the instance, called by main_subshell under --no-plugins)."""
        script = (
            "import os, sys\n"
            "import conda_guard_plugin.plugin as plugin\n"
            "from conda.plugins.manager import get_plugin_manager\n"
            "import conda.plugins.types, conda.exceptions, conda.base.context, conda.cli.main\n"
            "from conda.core.package_cache_data import PackageCacheData, ProgressiveFetchExtract\n"
            "pm = get_plugin_manager()\n"
            "assert pm is get_plugin_manager()\n"
            "assert pm.register(plugin, name='conda-guard') is None\n"
            "name = pm.get_name(plugin)  # the module's name, as conda 26.7.1 registers entry points\n"
            "assert name == 'conda_guard_plugin.plugin' and not pm.is_blocked(name), name\n"
            "for hook in ('conda_post_solves', 'conda_pre_commands', 'conda_subcommands'):\n"
            "    assert any(i.plugin is plugin for i in getattr(pm.hook, hook).get_hookimpls()), hook\n"
            "assert issubclass(conda.exceptions.CondaVerificationError, Exception)\n"
            "def refuse():\n"
            "    print('no_plugins seen'); sys.stdout.flush(); os._exit(2)\n"
            "pm.disable_external_plugins = refuse\n"
            "sys.exit(conda.cli.main.main(*sys.argv[1:]))\n")
        python = os.path.join(_module["install"].venv, "bin", "python")
        r = se.run([python, "-c", script, "--no-plugins", "sign", "--keygen", "K"], self.ws.env)
        self.assertEqual((r.returncode, r.stdout), (2, "no_plugins seen\n"), r.stderr)
        r = se.run([python, "-c", script, "sign", "--keygen", "K"], self.ws.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(self.ws.keys, "K.pub")))

    # -- create, dry run, subcommands, --no-plugins ------------------------

    def test_create_over_an_existing_environment_refused_and_kept(self):
        before = self.states()
        r = self.conda("create", "-n", "x", "-y", "hello")
        self.assert_refused(r, before, self.prefix, "exists")

    def test_dry_run_is_gated_and_downloads_nothing(self):
        before = self.states()
        r = self.conda("install", "-n", "x", "--dry-run", "--json", "hello")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(json.loads(r.stdout)["dry_run"])
        self.assertIn("packages not downloaded", r.stderr)
        self.assertIn(f"conda-guard: dry run: {self.channel}/noarch/repodata.json: index signed by chan and "
                      "verified: its records are authenticated", r.stderr)
        self.assertIn("1 package record found: 1 from signed indexes (records authenticated)", r.stderr)
        self.assertEqual([p for p in self.server.paths() if p.endswith((".conda", ".tar.bz2", ".sig"))
                          and "repodata" not in p], [])
        self.assertEqual(self.states(), before)

    def test_A8_dry_run_of_an_unsigned_channel_without_a_rule_never_says_signed(self):
        """No policy rule, no repodata.json.sig, no package .sig: the real
        run refuses (MISSING_SIG); the dry run must not claim a signature."""
        self.ws.policy("channels:\n  - match: http://127.0.0.1:1/elsewhere\n    keys: [chan]\n")
        for name in os.listdir(self.noarch):
            if name.endswith(".sig"):
                os.unlink(os.path.join(self.noarch, name))
        env = {"CONDA_GUARD_STATE_DIR": os.path.join(self.tmp.name, "fresh-state")}  # never seen signed
        r = self.conda("install", "-n", "x", "--dry-run", "hello", env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"conda-guard: dry run: {self.channel}/noarch/repodata.json: index not signed: its "
                      "records are not authenticated", r.stderr)
        self.assertIn("1 not authenticated (no signed index vouches for it)", r.stderr)
        self.assertNotIn("signed by", r.stderr)
        self.assertNotIn("verified against the signed", r.stderr)
        r = self.conda("install", "-n", "x", "-y", "hello", env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("MISSING_SIG", r.stderr)

    def test_A8_dry_run_with_an_edited_index_refused(self):
        path = os.path.join(self.noarch, "repodata.json")
        with open(path) as f:
            index = json.load(f)
        index["packages"]["hello-1.0-0.tar.bz2"]["depends"] = []
        with open(path, "w") as f:
            json.dump(index, f)
        later = time.time() + 10  # newer than what was served: no 304 from the validators
        os.utime(path, (later, later))
        before = self.states()
        r = self.conda("install", "-n", "x", "--dry-run", "--json", "hello")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout)["exception_name"], "CondaVerificationError")
        self.assertIn("noarch/repodata.json", json.loads(r.stdout)["message"])
        self.assertEqual(self.states(), before)

    def test_sign_keygen_sign_and_verify_through_conda(self):
        work = os.path.join(self.tmp.name, "work")
        os.mkdir(work)
        keys = os.path.join(self.tmp.name, "userkeys")
        env = {"CONDA_KEYS_DIR": keys}
        r = self.ws.conda("sign", "--keygen", "MyKey", env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(keys, "MyKey.pub")))
        pkg = shutil.copy(self.hello, work)
        r = self.ws.conda("sign", pkg, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.isfile(pkg + ".sig"))
        r = self.ws.conda("sign", "--verify", pkg, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(pkg, "ab") as f:
            f.write(b"x")
        r = self.ws.conda("sign", "--verify", pkg, env=env)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("INVALID", r.stdout + r.stderr)

    def test_no_plugins_makes_conda_sign_an_invalid_choice(self):
        """--no-plugins, CONDA_NO_PLUGINS=true and condarc no_plugins: true
        disable the plugin route: `conda sign` is then an invalid choice, and
        conda installs without the gate (what the wrapper refuses)."""
        rc = os.path.join(self.tmp.name, "condarc")
        with open(rc, "w") as f:
            f.write("no_plugins: true\n")
        for args, env in ((("--no-plugins", "sign", "--keygen", "K"), None),
                          (("sign", "--keygen", "K"), {"CONDA_NO_PLUGINS": "true"}),
                          (("sign", "--keygen", "K"), {"CONDARC": rc})):
            r = self.ws.conda(*args, env=env)
            self.assertEqual(r.returncode, 2, (args, env, r.stdout, r.stderr))
            self.assertIn("invalid choice: 'sign'", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.ws.keys, "K")))
        os.unlink(self.hello + ".sig")
        r = self.conda("install", "-n", "x", "-y", "hello", "--no-plugins")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("conda-guard", r.stderr)


if __name__ == "__main__":
    unittest.main()
