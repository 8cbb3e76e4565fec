#!/usr/bin/python3
"""condaguard plugin install benchmark (not a test): prints, in one run, the
wall time of `conda create -p PREFIX --override-channels -c URL <N names> -y`
of N signed packages of mixed sizes (about M MB in all) served by a local
nginx, with a fresh empty package cache, prefix and gate state each run:
  ungated: conda alone (`--no-plugins`): conda downloads, checks and extracts;
  gated:   the same command through the wrapper, `conda-guard create ...`
           with CONDA_EXE the same conda: the gate downloads, verifies and
           extracts, conda only links.
Target: gated no slower than ungated. After each gated run the prefix must
hold exactly what the ungated run put there (every entry, its mode and
sha256; conda-meta by name only), so the gated side cannot win by installing less.
Also prints the peak RSS of the conda-guard processes (sampled from
/proc/PID/status VmHWM every 0.1 s while they run).
The conda is the stand-in of the plugin tests (plugin/tests/standin_conda, in
a throwaway venv), or --conda PATH (a real conda; never needed).
Exits 1 when gated is slower than ungated (after printing every figure).
Usage: bench/plugin_install.py conda-sign conda-guard make_packages
         [--packages N] [--total-mb M] [--runs R] [--conda PATH]"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

from harness import drop_to, make_signed_channel, run, start_nginx, timed_child

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "plugin", "tests"))


class PeakRss:
    """Samples VmHWM of every process running `exe` while active; a process's
    high-water mark only grows, so its last sample is its peak (give or take
    what it grew in its last 0.1 s)."""

    def __init__(self, exe):
        self.exe = os.path.realpath(exe)
        self.peak_kib = {}  # argv[1] (the subcommand) -> KiB
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/exe" % pid) != self.exe:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
                with open("/proc/%s/status" % pid) as f:
                    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
            except (OSError, StopIteration, ValueError):
                continue
            sub = argv[1].decode(errors="replace") if len(argv) > 1 else ""
            self.peak_kib[sub] = max(self.peak_kib.get(sub, 0), hwm)

    def _loop(self):
        while not self._stop.wait(0.1):
            self._sample()

    def __enter__(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def prefix_content(prefix, snapshot):
    """Every entry of the prefix with its kind, mode and sha256, except
    conda-meta, whose files differ by design (history's time, the cache
    records): those by name only."""
    out = {}
    for rel, what in snapshot(prefix).items():
        out[rel] = ("conda-meta",) if rel.startswith("conda-meta" + os.sep) else what
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("conda_sign")
    ap.add_argument("conda_guard")
    ap.add_argument("make_packages")
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--total-mb", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3, help="best of RUNS for each side")
    ap.add_argument("--conda", help="a real conda executable to measure instead of the stand-in")
    a = ap.parse_args()
    sign, guard = os.path.abspath(a.conda_sign), os.path.abspath(a.conda_guard)
    os.environ["CONDA_GUARD_EXE"], os.environ["CONDA_SIGN_EXE"] = guard, sign
    import standin_env as se  # reads the two above when imported

    with tempfile.TemporaryDirectory(prefix="condaguard-bench-plugin.") as tmp:
        plain = se.CondaInstall(os.path.join(tmp, "plain"))  # the plugin is not installed in it
        ws = se.Workspace(os.path.join(tmp, "ws"), plain)
        conda = os.path.abspath(a.conda) if a.conda else plain.conda
        env = dict(ws.env, CONDA_EXE=conda)
        ch = os.path.join(tmp, "www", "bench")
        files, total = make_signed_channel(sign, guard, a.make_packages, ch, env, a.packages, a.total_mb,
                                           no_depends=True)
        names = [f.rsplit("-", 2)[0] for f in files]
        prefix = os.path.join(tmp, "prefix")
        state = env["CONDA_GUARD_STATE_DIR"]
        label = "conda %s" % (conda if a.conda else "stand-in (plugin/tests/standin_conda)")

        nginx, port = start_nginx(tmp, os.path.join(tmp, "www"))
        try:
            url = "http://127.0.0.1:%d/bench" % port
            ws.policy("channels:\n  - match: %s\n    keys: [bench]\n    index: required\n"
                      "    channel_id: bench\n" % url)
            args = ["create", "-p", prefix, "--override-channels", "-c", url, "-y"] + names
            ungated_cmd = [conda, "--no-plugins"] + args
            gated_cmd = [guard] + args  # the wrapper; CONDA_EXE in env names the same conda
            sampler = PeakRss(guard)
            t_ungated, t_gated, expected = None, None, None
            for i in range(a.runs):
                for side in ("ungated", "gated"):
                    drop_to(ws.pkgs)
                    drop_to(state)
                    se.rmtree(prefix)
                    subprocess.run(["sync"])
                    with sampler:
                        t, _ = timed_child(ungated_cmd if side == "ungated" else gated_cmd, env, cwd=ws.root)
                    content = prefix_content(prefix, se.snapshot)
                    if side == "ungated":
                        t_ungated = t if t_ungated is None else min(t_ungated, t)
                        expected = expected or content
                        if content != expected:
                            sys.exit("the ungated runs installed different prefixes")
                    else:
                        t_gated = t if t_gated is None else min(t_gated, t)
                        if content != expected:
                            diff = sorted(k for k in set(content) | set(expected) if content.get(k) != expected.get(k))
                            sys.exit("the gated run's prefix differs from the ungated one's in %d entries, "
                                     "first: %s" % (len(diff), ", ".join(diff[:5])))
                    print("  run %d: %-7s %.2f s" % (i + 1, side, t))
        finally:
            nginx.kill()
            nginx.wait()
        files_in_prefix = sum(1 for v in expected.values() if v[0] == "file")
        ratio = t_gated / t_ungated
        ok = ratio <= 1.0
        print("conda create of %d signed packages (%.0f MB, %d files in the prefix, same content both ways) "
              "from local nginx, %s, fresh cache each run, best of %d:"
              % (len(files), total / 1e6, files_in_prefix, label, a.runs))
        print("  ungated (conda --no-plugins create) %.2f s; gated (conda-guard create, CONDA_EXE the same conda) "
              "%.2f s: %.2fx (target <= 1.0x) %s" % (t_ungated, t_gated, ratio, "PASS" if ok else "MISS"))
        print("  peak RSS of conda-guard (sampled): " + (", ".join(
            "%s %.1f MB" % (sub or "(no args)", kib / 1024) for sub, kib in sorted(sampler.peak_kib.items()))
            or "no conda-guard process was seen"))
    if not ok:
        print("plugin install benchmark: the gated install was slower than the ungated one")
        return 1
    print("plugin install benchmark: the gated install was no slower than the ungated one")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.exit(main())
