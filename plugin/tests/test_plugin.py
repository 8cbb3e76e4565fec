"""The plugin's hooks against a stand-in conda (fakeconda) and a stand-in
conda-guard (standin). Tests are named after the threats of
shared/design/threats.md they close."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import unittest
from contextlib import redirect_stderr
from unittest import mock

from tests import fakeconda, standin

fakeconda.install()

from conda_guard_plugin import core, plugin  # noqa: E402  (after the stand-in conda)

CHANNEL = "https://repo.example.org/signed/linux-64"
TOKEN = "tk-0123456789-SECRET"


def hook(generator_function, index=0):
    return list(generator_function())[index]


class PluginTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cg-plugin-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.bin = os.path.join(self.tmp, "bin")
        self.pkgs = os.path.join(self.tmp, "pkgs")
        os.makedirs(self.bin)
        os.makedirs(self.pkgs)
        standin.write(self.bin, "conda-guard")
        standin.write(self.bin, "conda-sign")
        standin.set_scenario(self.bin)
        fakeconda.reset(self.pkgs)
        fakeconda.context.plugins.condaguard_bin_dir = self.bin
        fakeconda.context.target_prefix = os.path.join(self.tmp, "envs", "env")
        plugin._State.command = "install"

    # helpers ---------------------------------------------------------------
    def scenario(self, **kw) -> None:
        standin.set_scenario(self.bin, **kw)

    def calls(self):
        return standin.calls(self.bin)

    def request(self, index=-1):
        return json.loads(self.calls()[index]["stdin"])

    def post_solve(self, precs) -> None:
        hook(plugin.conda_post_solves).action("current_repodata.json", (), tuple(precs))

    def pre_command(self, command: str) -> None:
        hook(plugin.conda_pre_commands).action(command)

    def refused(self, fn, *args) -> str:
        with self.assertRaises(fakeconda.CondaVerificationError) as cm:
            fn(*args)
        return str(cm.exception)

    def precs(self, n=2, token=""):
        return [fakeconda.Record(channel_url=CHANNEL, fn=f"pkg{i}-1.0-h{i}_0.conda", token=token)
                for i in range(n)]

    def explicit_file(self, lines) -> str:
        path = os.path.join(self.tmp, "explicit.txt")
        with open(path, "w") as f:
            f.write("\n".join(["# platform: linux-64", "@EXPLICIT", *lines]) + "\n")
        return path


class Registration(PluginTest):
    def test_hooks_yield_conda_types(self) -> None:
        subs = list(plugin.conda_subcommands())
        self.assertEqual([s.name for s in subs], ["sign", "guard"])
        self.assertTrue(all(s.configure_parser is None for s in subs))
        pre = hook(plugin.conda_pre_commands)
        self.assertTrue({"install", "create", "update", "env_create", "env_update"} <= pre.run_for)
        self.assertIsInstance(hook(plugin.conda_post_solves), fakeconda.CondaPostSolve)
        setting = hook(plugin.conda_settings)
        self.assertEqual(setting.name, "condaguard_bin_dir")
        self.assertEqual(setting.parameter.element_type, str)

    def test_core_and_package_import_without_conda(self) -> None:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = ("import sys, conda_guard_plugin, conda_guard_plugin.core; "
                "sys.exit(1 if any(m == 'conda' or m.startswith('conda.') for m in sys.modules) else 0)")
        self.assertEqual(subprocess.run([sys.executable, "-c", code], cwd=here).returncode, 0)

    def test_entry_point_in_conda_group(self) -> None:
        try:
            import tomllib
        except ImportError:
            self.skipTest("tomllib needs Python 3.11")
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(here, "pyproject.toml"), "rb") as f:
            project = tomllib.load(f)["project"]
        self.assertEqual(project["entry-points"]["conda"], {"conda-guard": "conda_guard_plugin.plugin"})


class Subcommands(PluginTest):
    def test_sign_passes_args_untouched_and_returns_status(self) -> None:
        self.scenario(tool_exit=3)
        args = ("--keygen", "MyKey", "--size", "4096", "-v", "--json", "a b", "*.tar.bz2")
        self.assertEqual(hook(plugin.conda_subcommands, 0).action(args), 3)
        call = self.calls()[-1]
        self.assertEqual(call["argv"][0], os.path.join(self.bin, "conda-sign"))
        self.assertEqual(call["argv"][1:], list(args))

    def test_guard_help_reaches_conda_guard(self) -> None:
        self.assertEqual(hook(plugin.conda_subcommands, 1).action(("--help",)), 0)
        self.assertEqual(self.calls()[-1]["argv"][1:], ["--help"])
        self.assertEqual(os.path.basename(self.calls()[-1]["argv"][0]), "conda-guard")

    def test_A19_missing_binary_is_status_2_not_an_exception(self) -> None:
        os.unlink(os.path.join(self.bin, "conda-sign"))
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(hook(plugin.conda_subcommands, 0).action(("--verify", "x.conda")), 2)
        self.assertIn("conda-sign not found", err.getvalue())
        self.assertEqual(len(err.getvalue().strip().splitlines()), 1)


class PostSolves(PluginTest):
    def test_all_valid_and_self_check_pass(self) -> None:
        precs = self.precs(2)
        self.post_solve(precs)
        self.assertEqual(len(self.calls()), 1)
        req = self.request()
        self.assertEqual(req["version"], 1)
        self.assertEqual(req["command"], "install")
        self.assertIs(req["dry_run"], False)
        self.assertEqual(req["pkgs_dirs"], [self.pkgs])
        self.assertEqual(req["records"][0], {
            "url": f"{CHANNEL}/pkg0-1.0-h0_0.conda", "fn": "pkg0-1.0-h0_0.conda", "name": "pkg0",
            "version": "1.0", "build": "h0_0", "subdir": "linux-64", "sha256": "a" * 64,
            "md5": "b" * 32, "size": 1234, "channel": CHANNEL})
        calls = fakeconda.STATE.calls
        self.assertEqual(calls[0], ("clear",), "the cache state must be cleared before the check")
        for p in precs:
            self.assertIn(("make_actions_for_record", "Record", p.fn), calls)
            self.assertIn(("get_entry_to_link", "Record", p.fn), calls)

    def test_empty_link_precs_do_not_call_the_gate(self) -> None:
        self.post_solve([])
        self.assertEqual(self.calls(), [])
        self.assertEqual(fakeconda.STATE.calls, [])

    def test_command_comes_from_the_pre_command(self) -> None:
        self.pre_command("update")
        self.post_solve(self.precs(1))
        self.assertEqual(self.request()["command"], "update")

    def test_A2_refusal_names_each_package_verdict_and_reason(self) -> None:
        precs = self.precs(3)
        self.scenario(verdicts={precs[0].fn: ["MISSING_SIG", "no signature file"],
                                precs[2].fn: ["INVALID", "digest does not match signature"]})
        msg = self.refused(self.post_solve, precs)
        self.assertIn(f"{precs[0].fn}  MISSING_SIG  no signature file", msg)
        self.assertIn(f"{precs[2].fn}  INVALID  digest does not match signature", msg)
        self.assertNotIn(precs[1].fn, msg)
        self.assertEqual(fakeconda.STATE.calls, [], "no self-check after a refusal")

    def test_A19_missing_binary_refuses(self) -> None:
        os.unlink(os.path.join(self.bin, "conda-guard"))
        self.assertIn("conda-guard not found", self.refused(self.post_solve, self.precs(1)))

    def test_A19_configured_folder_is_the_only_place_looked(self) -> None:
        # A conda-guard on PATH does not stand in for a missing configured one.
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        fakeconda.context.plugins.condaguard_bin_dir = empty
        with mock.patch.dict(os.environ, {"PATH": self.bin}):
            self.refused(self.post_solve, self.precs(1))
        self.assertEqual(self.calls(), [])

    def test_A19_non_json_answer_refuses(self) -> None:
        self.scenario(stdout="all good\n", exit=0)
        self.assertIn("did not answer in JSON", self.refused(self.post_solve, self.precs(1)))

    def test_A19_duplicate_keys_refuse(self) -> None:
        self.scenario(stdout='{"version": 1, "command": "gate", "status": "fail", "status": "ok", '
                             '"dry_run": false, "indexes": [], "packages": []}', exit=0)
        self.refused(self.post_solve, self.precs(1))

    def test_A19_crash_refuses(self) -> None:
        self.scenario(crash=True)
        self.refused(self.post_solve, self.precs(1))

    def test_A19_timeout_refuses(self) -> None:
        self.scenario(sleep=30)
        with mock.patch.object(core, "GATE_TIMEOUT_SECONDS", 0.5):
            self.assertIn("did not answer within", self.refused(self.post_solve, self.precs(1)))

    def test_A19_exit_0_but_a_package_not_valid_refuses(self) -> None:
        precs = self.precs(2)
        self.scenario(verdicts={precs[1].fn: ["UNTRUSTED_KEY", "key Other not allowed"]}, status="ok", exit=0)
        self.assertIn(f"{precs[1].fn}  UNTRUSTED_KEY", self.refused(self.post_solve, precs))

    def test_A19_nonzero_exit_with_status_ok_refuses(self) -> None:
        self.scenario(exit=1)
        self.refused(self.post_solve, self.precs(1))

    def test_A19_status_error_shows_its_message(self) -> None:
        self.scenario(status="error", message="cannot read policy /etc/condaguard/policy.yaml")
        self.assertIn("cannot read policy", self.refused(self.post_solve, self.precs(1)))

    def test_A19_package_count_mismatch_refuses(self) -> None:
        self.scenario(drop=1)
        self.assertIn("answered for 1 packages, 2 were asked", self.refused(self.post_solve, self.precs(2)))

    def test_A19_no_placed_folder_refuses(self) -> None:
        self.scenario(no_placed=True)
        self.refused(self.post_solve, self.precs(1))

    def test_A19_other_dry_run_answer_refuses(self) -> None:
        self.scenario(answer_dry_run=True)
        self.refused(self.post_solve, self.precs(1))

    def test_A19_unexpected_error_in_conda_api_refuses(self) -> None:
        with mock.patch.object(fakeconda.PackageCacheData, "get_entry_to_link",
                               side_effect=RuntimeError("boom")):
            self.assertIn("boom", self.refused(self.post_solve, self.precs(1)))

    def test_A14_planted_sibling_linked_instead_refuses(self) -> None:
        precs = self.precs(2)
        sibling = os.path.join(self.pkgs, "pkg1-1.0-h1_0.old")
        os.makedirs(sibling)
        fakeconda.STATE.links[precs[1].fn] = sibling
        msg = self.refused(self.post_solve, precs)
        self.assertIn(f"{precs[1].fn}: conda would link {sibling}", msg)
        self.assertNotIn(precs[0].fn + ":", msg)

    def test_A14_conda_would_still_fetch_refuses(self) -> None:
        precs = self.precs(1)
        fakeconda.STATE.actions[precs[0].fn] = ("CacheUrlAction", "ExtractPackageAction")
        self.assertIn("would still fetch or extract", self.refused(self.post_solve, precs))

    def test_A26_token_goes_through_stdin_only(self) -> None:
        precs = self.precs(2, token=TOKEN)
        self.scenario(verdicts={precs[0].fn: ["MISSING_SIG", "no signature file"]})
        msg = self.refused(self.post_solve, precs)
        call = self.calls()[-1]
        self.assertEqual(call["argv"], [os.path.join(self.bin, "conda-guard"), "gate"])
        self.assertNotIn(TOKEN, json.dumps(call["argv"]))
        self.assertIn(f"/t/{TOKEN}/", self.request()["records"][0]["url"])
        self.assertNotIn(TOKEN, msg)

    def test_dry_run_sends_dry_run_and_skips_the_cache_check(self) -> None:
        fakeconda.context.dry_run = True
        fakeconda.context.quiet = False
        precs = self.precs(1)
        fakeconda.STATE.links[precs[0].fn] = "/nonexistent"  # would fail the self-check
        err = io.StringIO()
        with redirect_stderr(err):
            self.post_solve(precs)
        self.assertIs(self.request()["dry_run"], True)
        self.assertEqual(fakeconda.STATE.calls, [])
        self.assertIn("dry run", err.getvalue())
        self.assertEqual(len(err.getvalue().strip().splitlines()), 1)


class UnsignedByPolicy(PluginTest):
    """A channel the policy allows unsigned (signatures: none): its packages
    pass as the gate answered them, UNVERIFIED, and never silently."""

    REASON = ("not authenticated: the policy's rule for 'conda-forge' (/home/u/.conda/guard.yaml:7:17) "
              "allows this channel unsigned (signatures: none)")

    def run_quietly(self, precs, quiet):
        fakeconda.context.quiet = quiet
        err = io.StringIO()
        with redirect_stderr(err):
            self.post_solve(precs)
        return err.getvalue().strip().splitlines()

    def test_A1_valid_and_unverified_mix_passes_with_one_warning_per_unverified_package(self) -> None:
        precs = self.precs(5)
        self.scenario(unverified={precs[1].fn: ["conda-forge", self.REASON],
                                  precs[3].fn: ["conda-forge", self.REASON]})
        lines = self.run_quietly(precs, quiet=False)
        self.assertEqual(lines, [
            f"conda-guard: WARNING: {precs[1].fn} from conda-forge is UNVERIFIED: {self.REASON}",
            f"conda-guard: WARNING: {precs[3].fn} from conda-forge is UNVERIFIED: {self.REASON}",
            "conda-guard: 3 verified and placed, 2 UNVERIFIED (policy allows unsigned channel conda-forge)",
        ])
        for p in precs:  # UNVERIFIED ones are placed and checked like the others
            self.assertIn(("get_entry_to_link", "Record", p.fn), fakeconda.STATE.calls)

    def test_A1_quiet_still_prints_each_unverified_warning(self) -> None:
        precs = self.precs(2)
        self.scenario(unverified={precs[0].fn: ["conda-forge", self.REASON]})
        self.assertEqual(self.run_quietly(precs, quiet=True), [
            f"conda-guard: WARNING: {precs[0].fn} from conda-forge is UNVERIFIED: {self.REASON}"])

    def test_A1_dry_run_counts_unverified_records(self) -> None:
        fakeconda.context.dry_run = True
        precs = self.precs(2)
        self.scenario(unverified={precs[0].fn: ["conda-forge", "dry run: " + self.REASON]})
        lines = self.run_quietly(precs, quiet=False)
        self.assertEqual(len(lines), 2)
        self.assertIn("is UNVERIFIED: dry run", lines[0])
        self.assertIn("1 UNVERIFIED (policy allows unsigned channel conda-forge)", lines[1])

    def test_A19_unverified_without_its_policy_rule_refuses(self) -> None:
        precs = self.precs(2)
        self.scenario(unverified={precs[0].fn: [None, self.REASON]})
        self.assertIn(f"{precs[0].fn}  UNVERIFIED", self.refused(self.post_solve, precs))
        self.assertEqual(fakeconda.STATE.calls, [], "no self-check after a refusal")

    def test_A19_unverified_without_an_unverified_index_refuses(self) -> None:
        precs = self.precs(1)
        self.scenario(unverified={precs[0].fn: ["conda-forge", self.REASON]}, indexes=[])
        self.assertIn("without an UNVERIFIED index", self.refused(self.post_solve, precs))

    def test_A19_unverified_in_a_failed_answer_refuses(self) -> None:
        precs = self.precs(2)
        self.scenario(unverified={precs[0].fn: ["conda-forge", self.REASON]},
                      verdicts={precs[1].fn: ["MISSING_SIG", "no signature file"]})
        msg = self.refused(self.post_solve, precs)
        self.assertIn(f"{precs[1].fn}  MISSING_SIG", msg)


class PreCommands(PluginTest):
    SHA = "c" * 64
    MD5 = "d" * 32

    def test_A15_explicit_file_is_gated_before_conda_downloads(self) -> None:
        local = os.path.join(self.tmp, "local", "loc-2.0-0.tar.bz2")
        path = self.explicit_file([
            f"https://host.example/ch/linux-64/one-1.0-h1_0.conda#{self.SHA}",
            f"https://host.example/ch/noarch/two-2.1-py_0.tar.bz2#sha256:{self.SHA}",
            f"https://host.example/ch/linux-64/three-3-0.conda#{self.MD5}",
            local,
        ])
        fakeconda.context._argparse_args.file = [path]
        fakeconda.context._argparse_args.name = "env"
        self.pre_command("create")
        call = self.calls()[-1]
        self.assertEqual(call["argv"][1:], ["gate"])
        req = json.loads(call["stdin"])
        self.assertEqual(req["command"], "create")
        self.assertEqual(req["records"][0], {
            "url": "https://host.example/ch/linux-64/one-1.0-h1_0.conda",
            "fn": "one-1.0-h1_0.conda", "name": "one", "version": "1.0", "build": "h1_0",
            "subdir": "linux-64", "sha256": self.SHA, "md5": None, "size": None,
            "channel": "https://host.example/ch/linux-64"})
        self.assertEqual((req["records"][1]["sha256"], req["records"][1]["subdir"]), (self.SHA, "noarch"))
        self.assertEqual((req["records"][2]["md5"], req["records"][2]["sha256"]), (self.MD5, None))
        self.assertEqual(req["records"][3]["url"], "file://" + local)
        # conda fetches the MatchSpec, then links the cache record found for it
        calls = fakeconda.STATE.calls
        self.assertEqual(calls[0], ("clear",))
        self.assertIn(("make_actions_for_record", "MatchSpec", "two-2.1-py_0.tar.bz2"), calls)
        self.assertIn(("query_all", "MatchSpec", "two-2.1-py_0.tar.bz2"), calls)
        self.assertIn(("get_entry_to_link", "CacheRecord", "two-2.1-py_0.tar.bz2"), calls)

    def test_A15_explicit_refusal_raises(self) -> None:
        path = self.explicit_file([f"https://host.example/ch/linux-64/one-1.0-h1_0.conda#{self.MD5}"])
        fakeconda.context._argparse_args.file = [path]
        self.scenario(verdicts={"one-1.0-h1_0.conda": ["INVALID", "md5 in the explicit file differs from the signed record"]})
        self.assertIn("one-1.0-h1_0.conda  INVALID", self.refused(self.pre_command, "install"))

    def test_A26_explicit_url_with_token_refused_before_the_gate(self) -> None:
        path = self.explicit_file([f"https://host.example/t/{TOKEN}/ch/linux-64/one-1.0-h1_0.conda#{self.SHA}"])
        fakeconda.context._argparse_args.file = [path]
        message = self.refused(self.pre_command, "install")
        self.assertIn("carries credentials", message)
        self.assertNotIn(TOKEN, message)
        self.assertEqual(self.calls(), [])

    def test_A15_explicit_planted_sibling_refuses(self) -> None:
        path = self.explicit_file(["https://host.example/ch/linux-64/one-1.0-h1_0.conda"])
        fakeconda.context._argparse_args.file = [path]
        sibling = os.path.join(self.pkgs, ".tmp-x")
        os.makedirs(sibling)
        fakeconda.STATE.links["one-1.0-h1_0.conda"] = sibling
        self.assertIn(f"would link {sibling}", self.refused(self.pre_command, "install"))

    def test_A15_package_urls_and_tarball_paths_are_gated(self) -> None:
        tarball = os.path.join(self.tmp, "dl", "x-1-0.tar.bz2")
        fakeconda.context._argparse_args.packages = [
            "https://host.example/ch/linux-64/y-2-0.conda", tarball]
        self.pre_command("install")
        req = self.request()
        self.assertEqual([r["url"] for r in req["records"]],
                         ["https://host.example/ch/linux-64/y-2-0.conda", "file://" + tarball])

    def test_A15_env_create_single_file_is_gated(self) -> None:
        fakeconda.context._argparse_args.file = self.explicit_file(["https://h.example/c/linux-64/z-1-0.conda"])
        fakeconda.context._argparse_args.name = "env"
        self.pre_command("env_create")
        self.assertEqual(self.request()["records"][0]["fn"], "z-1-0.conda")

    def test_A15_file_given_by_url_refuses(self) -> None:
        fakeconda.context._argparse_args.file = [f"https://host.example/t/{TOKEN}/explicit.txt"]
        msg = self.refused(self.pre_command, "install")
        self.assertNotIn(TOKEN, msg)
        self.assertEqual(self.calls(), [])

    def test_A15_unparsable_explicit_line_refuses(self) -> None:
        fakeconda.context._argparse_args.file = [self.explicit_file(["https://h.example/c/linux-64/notapackage.zip"])]
        self.assertIn("cannot parse explicit line", self.refused(self.pre_command, "install"))

    def test_A15_explicit_dry_run_skips_cache_check(self) -> None:
        fakeconda.context.dry_run = True
        fakeconda.context._argparse_args.file = [self.explicit_file(["https://h.example/c/linux-64/z-1-0.conda"])]
        self.pre_command("install")
        self.assertIs(self.request()["dry_run"], True)
        self.assertEqual(fakeconda.STATE.calls, [])

    def test_solver_specs_and_plain_files_are_left_to_post_solve(self) -> None:
        path = os.path.join(self.tmp, "specs.txt")
        with open(path, "w") as f:
            f.write("numpy>=1.20\nzlib\n")
        fakeconda.context._argparse_args.file = [path]
        fakeconda.context._argparse_args.packages = ["python=3.11", "conda-forge::zlib"]
        self.pre_command("install")
        self.assertEqual(self.calls(), [])

    def test_create_over_existing_environment_refused_and_left_as_is(self) -> None:
        prefix = fakeconda.context.target_prefix
        os.makedirs(os.path.join(prefix, "conda-meta"))
        history = os.path.join(prefix, "conda-meta", "history")
        with open(history, "w") as f:
            f.write("==> 2026-01-01 <==\n")
        fakeconda.context._argparse_args.name = "env"
        fakeconda.context._argparse_args.packages = ["zlib"]
        msg = self.refused(self.pre_command, "create")
        self.assertIn("remove it first", msg)
        with open(history) as f:
            self.assertEqual(f.read(), "==> 2026-01-01 <==\n")
        self.assertEqual(self.calls(), [])

    def test_create_over_missing_or_empty_prefix_and_install_into_existing_pass(self) -> None:
        fakeconda.context._argparse_args.prefix = fakeconda.context.target_prefix
        self.pre_command("create")
        os.makedirs(fakeconda.context.target_prefix)
        self.pre_command("create")
        with open(os.path.join(fakeconda.context.target_prefix, "f"), "w"):
            pass
        self.pre_command("install")
        self.assertEqual(self.calls(), [])

    def test_create_without_a_named_target_refused_unless_dry_run(self) -> None:
        self.assertIn("-n NAME or -p PREFIX", self.refused(self.pre_command, "create"))
        fakeconda.context.dry_run = True
        self.pre_command("create")

    def test_create_clone_refused(self) -> None:
        fakeconda.context._argparse_args.name = "env"
        fakeconda.context._argparse_args.clone = "base"
        self.assertIn("--clone", self.refused(self.pre_command, "create"))


if __name__ == "__main__":
    unittest.main()
