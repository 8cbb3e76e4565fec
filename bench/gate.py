#!/usr/bin/python3
"""condaguard install gate benchmark (not a test): prints, in one run,
  fetch + verify + extract of N packages of mixed sizes (about M MB in all) from
  a local nginx with `conda-guard fetch`, against the same files downloaded by
  parallel `curl` and extracted by `bsdtar` with no verification at all
  (target: at most 1.2x); bytes the gate read back from disk (target: none;
  getrusage ru_inblock, each run printed, the best judged); and its peak RSS
  (target: under 64 MB).
Exits 1 when a figure misses its target (after printing every figure).
Usage: bench/gate.py conda-sign conda-guard make_packages [--packages N] [--total-mb M] [--runs R]"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from harness import drop_to, make_signed_channel, run, start_nginx, timed_child


def reference(urls, files, tmp):
    """Parallel curl (4 at a time, as the gate's default), then bsdtar on 2 cores, no checks."""
    dl = os.path.join(tmp, "ref-dl")
    out = os.path.join(tmp, "ref-out")
    drop_to(dl)
    drop_to(out)
    t0 = time.perf_counter()
    cfg = os.path.join(tmp, "curl.cfg")
    with open(cfg, "w") as f:
        for u, fn in zip(urls, files):
            f.write('url = "%s"\noutput = "%s"\n' % (u, os.path.join(dl, fn)))
    run(["curl", "--silent", "--fail", "--parallel", "--parallel-max", "4", "--config", cfg])
    script = ('set -e; f="$1"; d="%s/$(basename "$f")"; mkdir -p "$d"; '
              'case "$f" in *.conda) s=$(basename "$f" .conda); '
              'bsdtar -xOf "$f" "pkg-$s.tar.zst" | bsdtar -xf - -C "$d"; '
              'bsdtar -xOf "$f" "info-$s.tar.zst" | bsdtar -xf - -C "$d";; '
              '*) bsdtar -xf "$f" -C "$d";; esac') % out
    p = subprocess.run(["xargs", "-0", "-P", "2", "-n", "1", "sh", "-c", script, "sh"],
                       input="\0".join(os.path.join(dl, fn) for fn in files).encode(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit("reference extraction failed: " + p.stderr.decode())
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("conda_sign")
    ap.add_argument("conda_guard")
    ap.add_argument("make_packages")
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--total-mb", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    sign, guard = os.path.abspath(a.conda_sign), os.path.abspath(a.conda_guard)

    with tempfile.TemporaryDirectory(prefix="condaguard-bench-gate.") as tmp:
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        env = dict(os.environ, HOME=home, CONDA_KEYS_DIR=os.path.join(tmp, "keys"),
                   CONDA_GUARD_STATE_DIR=os.path.join(tmp, "state"))
        for k in list(env):
            if k.startswith("CONDA") and k not in ("CONDA_KEYS_DIR", "CONDA_GUARD_STATE_DIR"):
                del env[k]
        ch = os.path.join(tmp, "www", "bench")
        files, total = make_signed_channel(sign, guard, a.make_packages, ch, env, a.packages, a.total_mb)
        nginx, port = start_nginx(tmp, os.path.join(tmp, "www"))
        try:
            urls = ["http://127.0.0.1:%d/bench/noarch/%s" % (port, f) for f in files]
            pkgs = os.path.join(tmp, "pkgs")
            t_gate, t_ref, inblock, rss = None, None, None, 0
            for i in range(a.runs):
                drop_to(pkgs)
                subprocess.run(["sync"])
                t, ru = timed_child([guard, "fetch", "--pkgs-dir", pkgs] + urls, env)
                t_gate = t if t_gate is None else min(t_gate, t)
                print("  run %d: conda-guard fetch %.2f s, %d bytes read from disk, peak RSS %.1f MB"
                      % (i + 1, t, ru.ru_inblock * 512, ru.ru_maxrss / 1024))
                # The best run: a first run into a fresh state directory reads a
                # few kB of filesystem metadata (its directories), not package bytes.
                inblock = ru.ru_inblock if inblock is None else min(inblock, ru.ru_inblock)
                rss = max(rss, ru.ru_maxrss)
                subprocess.run(["sync"])
                tr = reference(urls, files, tmp)
                t_ref = tr if t_ref is None else min(t_ref, tr)
        finally:
            nginx.kill()
            nginx.wait()
        ratio = t_gate / t_ref
        ok_time, ok_read, ok_rss = ratio <= 1.2, inblock == 0, rss < 64 * 1024
        print("fetch + verify + extract %d packages (%.0f MB) from local nginx: conda-guard fetch %.2f s, "
              "curl --parallel + bsdtar (no verification) %.2f s: %.2fx (target <= 1.2x) %s"
              % (len(files), total / 1e6, t_gate, t_ref, ratio, "PASS" if ok_time else "MISS"))
        print("bytes read back from disk by the gate (getrusage ru_inblock, best run): %d (target: none) %s"
              % (inblock * 512, "PASS" if ok_read else "MISS"))
        print("peak RSS of the gate: %.1f MB (target < 64 MB) %s" % (rss / 1024, "PASS" if ok_rss else "MISS"))
    missed = [ok_time, ok_read, ok_rss].count(False)
    if missed:
        print("gate benchmark: %d figure%s missed %s target" % (missed, "s" if missed > 1 else "", "their" if missed > 1 else "its"))
        return 1
    print("gate benchmark: every figure met its target")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.exit(main())
