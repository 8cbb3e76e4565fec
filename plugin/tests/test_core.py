"""core.py on its own: binary lookup, explicit lines, response checks."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import unittest

from conda_guard_plugin import core


def executable(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(path, stat.S_IRWXU)
    return path


class FindBinary(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cg-core-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.prefix = os.path.join(self.tmp, "conda")
        self.path_dir = os.path.join(self.tmp, "userbin")

    def find(self, configured=""):
        return core.find_binary("conda-guard", configured_dir=configured, python_prefix=self.prefix,
                                path=self.path_dir)

    def test_beside_condas_python_before_PATH(self) -> None:
        # A user-writable PATH entry must not shadow the one beside conda.
        executable(os.path.join(self.path_dir, "conda-guard"))
        beside = executable(os.path.join(self.prefix, "bin", "conda-guard"))
        self.assertEqual(self.find(), beside)

    def test_PATH_when_not_beside_conda(self) -> None:
        on_path = executable(os.path.join(self.path_dir, "conda-guard"))
        self.assertEqual(self.find(), on_path)

    def test_configured_folder_wins_and_is_the_only_place(self) -> None:
        executable(os.path.join(self.prefix, "bin", "conda-guard"))
        configured = executable(os.path.join(self.tmp, "cfg", "conda-guard"))
        self.assertEqual(self.find(os.path.join(self.tmp, "cfg")), configured)
        os.unlink(configured)
        with self.assertRaises(core.GateRefused):
            self.find(os.path.join(self.tmp, "cfg"))

    def test_A19_missing_everywhere_refuses(self) -> None:
        with self.assertRaises(core.GateRefused):
            self.find()

    def test_A19_not_executable_is_missing(self) -> None:
        path = executable(os.path.join(self.prefix, "bin", "conda-guard"))
        os.chmod(path, 0o600)
        with self.assertRaises(core.GateRefused):
            self.find()


class Explicit(unittest.TestCase):
    SHA = "e" * 64

    def test_split_fn(self) -> None:
        self.assertEqual(core.split_fn("python-dateutil-2.9.0-pyhd8ed1ab_0.conda"),
                         ("python-dateutil", "2.9.0", "pyhd8ed1ab_0"))
        with self.assertRaises(core.GateRefused):
            core.split_fn("nodashes.conda")

    def test_lines_as_conda_reads_them(self) -> None:
        entries = core.explicit_entries([
            "# comment", "", "  @EXPLICIT  ",
            f"  https://h.example/ch/linux-64/a-1-0.conda#sha256:{self.SHA}  ",
        ])
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0].url, "https://h.example/ch/linux-64/a-1-0.conda")
        self.assertEqual(entries[0].checksums(), {"sha256": self.SHA})

    def test_A15_uppercase_or_short_hash_is_not_a_package_line(self) -> None:
        for bad in (f"https://h.example/c/linux-64/a-1-0.conda#{self.SHA.upper()}",
                    "https://h.example/c/linux-64/a-1-0.conda#abc"):
            with self.assertRaises(core.GateRefused):
                core.explicit_entries([bad])

    def test_A26_explicit_url_with_credentials_refused_redacted(self) -> None:
        for url in ("https://h.example/t/tk-123/c/linux-64/a-1-0.conda",
                    "https://user:secret@h.example/c/linux-64/a-1-0.conda"):
            with self.assertRaises(core.GateRefused) as caught:
                core.explicit_entries(["@EXPLICIT", f"{url}#sha256:{self.SHA}"])
            message = str(caught.exception)
            self.assertIn("carries credentials", message)
            self.assertNotIn("tk-123", message)
            self.assertNotIn("secret", message)
        self.assertFalse(core.has_credentials("https://h.example/c/linux-64/a-1-0.conda#" + self.SHA))

    def test_package_arguments(self) -> None:
        self.assertTrue(core.is_package_argument("./x-1-0.tar.bz2"))
        self.assertTrue(core.is_package_argument("https://h.example/c/linux-64/x-1-0.conda"))
        self.assertFalse(core.is_package_argument("numpy>=1.2"))
        self.assertFalse(core.is_package_argument("https://h.example/c"))

    def test_A13_explicit_file_that_is_a_fifo_refused_without_blocking(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "env.txt")
            os.mkfifo(fifo)
            with self.assertRaises(core.GateRefused) as caught:
                core.read_explicit_file(fifo)
            self.assertIn("not a regular file", str(caught.exception))
            link = os.path.join(d, "link.txt")
            os.symlink(fifo, link)
            with self.assertRaises(core.GateRefused) as caught:
                core.read_explicit_file(link)
            self.assertIn("symbolic link", str(caught.exception))

    def test_non_explicit_file_is_none(self) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("numpy\n# @EXPLICIT in a comment does not count\n")
        self.addCleanup(os.unlink, f.name)
        self.assertIsNone(core.read_explicit_file(f.name))


class Response(unittest.TestCase):
    def request(self, dry_run=False):
        return core.build_request(command="install", dry_run=dry_run, pkgs_dirs=["/p"],
                                  records=[{"fn": "a-1-0.conda"}, {"fn": "b-1-0.conda"}])

    def answer(self, packages, **top):
        out = {"version": 1, "command": "gate", "status": "ok", "dry_run": False, "indexes": [],
               "packages": packages}
        out.update(top)
        return json.dumps(out).encode()

    def valid(self, fn):
        return {"fn": fn, "url": "u", "verdict": "VALID", "reason": "ok", "placed": f"/p/{fn[:-6]}"}

    def test_clean_answer_maps_each_fn_to_its_folder(self) -> None:
        answer = core.check_response(self.request(), 0, self.answer(
            [self.valid("b-1-0.conda"), self.valid("a-1-0.conda")]))
        self.assertEqual(answer.placed, {"a-1-0.conda": "/p/a-1-0", "b-1-0.conda": "/p/b-1-0"})
        self.assertEqual(answer.unverified, [])

    def test_A14_removed_claimants_are_named_one_line_each(self) -> None:
        answer = core.check_response(self.request(), 0, self.answer(
            [dict(self.valid("a-1-0.conda"), cleaned=["/p/.tmp-x", "/q/a-1-0.old"]),
             dict(self.valid("b-1-0.conda"), cleaned=[])]))
        self.assertEqual(answer.cleaned, {"a-1-0.conda": ["/p/.tmp-x", "/q/a-1-0.old"]})
        self.assertEqual(answer.cleaned_lines(), [
            "removed /p/.tmp-x from the package cache: it claimed a-1-0, and conda could have linked it "
            "instead of the verified folder",
            "removed /q/a-1-0.old from the package cache: it claimed a-1-0, and conda could have linked it "
            "instead of the verified folder"])
        self.assertEqual(core.check_response(self.request(), 0, self.answer(
            [self.valid("a-1-0.conda"), self.valid("b-1-0.conda")])).cleaned_lines(), [])

    def test_A19_a_malformed_cleaned_list_refuses(self) -> None:
        for bad in ("/p/x", ["relative"], [1], {"a": 1}, None):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(core.GateRefused, "malformed"):
                    core.check_response(self.request(), 0, self.answer(
                        [dict(self.valid("a-1-0.conda"), cleaned=bad), self.valid("b-1-0.conda")]))

    UNSIGNED_INDEX = {"path": "https://conda.anaconda.org/conda-forge/noarch/repodata.json",
                      "verdict": "UNVERIFIED", "reason": "index not authenticated"}

    def unverified(self, fn, channel="conda-forge"):
        item = dict(self.valid(fn), verdict="UNVERIFIED", reason="not authenticated: policy rule x:1:1")
        if channel is not None:
            item["unsigned_channel"] = channel
        return item

    def test_A1_valid_and_unverified_mix_is_accepted_and_named(self) -> None:
        answer = core.check_response(self.request(), 0, self.answer(
            [self.valid("a-1-0.conda"), self.unverified("b-1-0.conda")], indexes=[self.UNSIGNED_INDEX]))
        self.assertEqual(answer.placed, {"a-1-0.conda": "/p/a-1-0", "b-1-0.conda": "/p/b-1-0"})
        self.assertEqual(answer.unverified, [core.Unverified(fn="b-1-0.conda", channel="conda-forge",
                                                             reason="not authenticated: policy rule x:1:1")])
        self.assertEqual(answer.warnings(), ["conda-guard: WARNING: b-1-0.conda from conda-forge is UNVERIFIED: "
                                             "not authenticated: policy rule x:1:1"])
        self.assertEqual(answer.summary("verified and placed"),
                         "1 verified and placed, 1 UNVERIFIED (policy allows unsigned channel conda-forge)")

    def test_A19_unverified_answers_that_do_not_fit_refuse(self) -> None:
        a, b = self.valid("a-1-0.conda"), self.unverified("b-1-0.conda")
        cases = {
            "no unsigned_channel": (0, [a, self.unverified("b-1-0.conda", channel=None)], [self.UNSIGNED_INDEX], {}),
            "empty unsigned_channel": (0, [a, self.unverified("b-1-0.conda", channel=" ")], [self.UNSIGNED_INDEX], {}),
            "empty reason": (0, [a, dict(b, reason="")], [self.UNSIGNED_INDEX], {}),
            "VALID with unsigned_channel": (0, [dict(a, unsigned_channel="conda-forge"), b], [self.UNSIGNED_INDEX], {}),
            "no UNVERIFIED index": (0, [a, b], [], {}),
            "exit 1": (1, [a, b], [self.UNSIGNED_INDEX], {}),
            "status fail": (0, [a, b], [self.UNSIGNED_INDEX], {"status": "fail"}),
            "no placed folder": (0, [a, dict(b, placed=None)], [self.UNSIGNED_INDEX], {}),
            "lower-case word": (0, [a, dict(b, verdict="unverified")], [self.UNSIGNED_INDEX], {}),
        }
        for name, (code, packages, indexes, top) in cases.items():
            with self.subTest(name), self.assertRaises(core.GateRefused):
                core.check_response(self.request(), code, self.answer(packages, indexes=indexes, **top))

    def test_A19_same_fn_twice_instead_of_each_once_refuses(self) -> None:
        with self.assertRaises(core.GateRefused):
            core.check_response(self.request(), 0, self.answer(
                [self.valid("a-1-0.conda"), self.valid("a-1-0.conda")]))

    def test_A19_relative_placed_folder_refuses(self) -> None:
        bad = self.valid("b-1-0.conda")
        bad["placed"] = "pkgs/b-1-0"
        with self.assertRaises(core.GateRefused):
            core.check_response(self.request(), 0, self.answer([self.valid("a-1-0.conda"), bad]))

    def test_A19_index_refusal_is_named(self) -> None:
        with self.assertRaises(core.GateRefused) as cm:
            core.check_response(self.request(), 1, self.answer(
                [], status="fail", indexes=[{"path": "https://h/c/linux-64/repodata.json",
                                             "verdict": "ROLLBACK", "reason": "older than seen"}]))
        self.assertIn("repodata.json  ROLLBACK  older than seen", str(cm.exception))

    def test_A19_wrong_version_refuses(self) -> None:
        with self.assertRaises(core.GateRefused):
            core.check_response(self.request(), 0, self.answer(
                [self.valid("a-1-0.conda"), self.valid("b-1-0.conda")], version=2))


class Redaction(unittest.TestCase):
    def test_A26_token_userinfo_and_query_removed(self) -> None:
        self.assertEqual(core.redact_url("https://u:p@h.example/t/abc-123/ch/x.conda?k=v#frag"),
                         "https://h.example/t/<TOKEN>/ch/x.conda")

    def test_exit_status_of_a_signal(self) -> None:
        self.assertEqual(core.exit_status(-9), 137)
        self.assertEqual(core.exit_status(3), 3)


if __name__ == "__main__":
    unittest.main()
