"""The plugin's gate call against the real conda-guard (no conda needed):
the request the plugin builds is read by `conda-guard gate`, and its answer
is accepted or refused by the plugin's own checks. Skipped when the build
does not say where conda-guard and conda-sign are (CONDA_GUARD_EXE,
CONDA_SIGN_EXE, set by meson test)."""

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import unittest

from conda_guard_plugin import core

GUARD = os.environ.get("CONDA_GUARD_EXE", "")
SIGN = os.environ.get("CONDA_SIGN_EXE", "")


def tar_bz2(path, members):
    with tarfile.open(path, "w:bz2") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            t.addfile(info, io.BytesIO(data))


@unittest.skipUnless(GUARD and SIGN and os.path.exists(GUARD) and os.path.exists(SIGN),
                     "CONDA_GUARD_EXE / CONDA_SIGN_EXE not set (run through meson test)")
class RealCondaGuard(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="plugin-real.")
        t = self.tmp.name
        self.saved = dict(os.environ)
        os.environ.update(HOME=t, CONDA_KEYS_DIR=os.path.join(t, "keys"),
                          CONDA_GUARD_STATE_DIR=os.path.join(t, "state"), CONDARC="", CONDA_PKGS_DIRS="")
        subprocess.run([SIGN, "--keygen", "chan"], check=True, stdout=subprocess.DEVNULL)
        self.channel = os.path.join(t, "channel")
        os.makedirs(os.path.join(self.channel, "noarch"))
        self.fn = "hello-1.0-0.tar.bz2"
        index = {"name": "hello", "version": "1.0", "build": "0", "build_number": 0, "depends": [],
                 "subdir": "noarch"}
        tar_bz2(os.path.join(self.channel, "noarch", self.fn),
                {"info/index.json": json.dumps(index).encode(), "info/files": b"bin/hello\n",
                 "bin/hello": b"#!/bin/sh\necho hello\n"})
        subprocess.run([GUARD, "index", self.channel, "--sign", "chan", "--channel-id", "demo", "--sign-packages"],
                       check=True, stdout=subprocess.DEVNULL)
        self.pkgs = os.path.join(t, "pkgs")

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.saved)
        self.tmp.cleanup()

    def request(self, dry_run=False, **change):
        path = os.path.join(self.channel, "noarch", self.fn)
        with open(path, "rb") as f:
            data = f.read()
        record = {"url": "file://" + path, "fn": self.fn, "name": "hello", "version": "1.0", "build": "0",
                  "subdir": "noarch", "sha256": hashlib.sha256(data).hexdigest(),
                  "md5": hashlib.md5(data).hexdigest(), "size": len(data),
                  "channel": "file://" + os.path.join(self.channel, "noarch")}
        record.update(change)
        return core.build_request(command="install", dry_run=dry_run, pkgs_dirs=[self.pkgs], records=[record])

    def test_placed_folder_is_answered_and_exists(self):
        placed = core.run_gate(GUARD, self.request()).placed
        self.assertEqual(placed[self.fn], os.path.join(self.pkgs, "hello-1.0-0"))
        self.assertTrue(os.path.isfile(os.path.join(placed[self.fn], "info", "repodata_record.json")))

    def test_A8_record_disagreeing_with_the_signed_index_is_refused(self):
        with self.assertRaises(core.GateRefused) as e:
            core.run_gate(GUARD, self.request(sha256="0" * 64))
        self.assertIn(self.fn, str(e.exception))
        self.assertIn("INVALID", str(e.exception))
        self.assertFalse(os.path.exists(os.path.join(self.pkgs, "hello-1.0-0")))

    def test_A2_missing_signature_is_refused(self):
        os.unlink(os.path.join(self.channel, "noarch", self.fn + ".sig"))
        with self.assertRaises(core.GateRefused) as e:
            core.run_gate(GUARD, self.request())
        self.assertIn("MISSING_SIG", str(e.exception))

    def test_dry_run_places_nothing(self):
        placed = core.run_gate(GUARD, self.request(dry_run=True)).placed
        self.assertEqual(placed, {self.fn: None})
        self.assertFalse(os.path.exists(self.pkgs))


if __name__ == "__main__":
    unittest.main()
