#!/usr/bin/python3
"""condaguard channel benchmark (not a test): prints, in one run,
  1. conda-guard index on 1,000 generated packages: seconds per package on 1 and 2 cores
  2. authenticate and parse a generated ~250 MB signed repodata.json
     (conda-guard verify-channel --index-only) against `openssl dgst -sha256`
     on the same file (target: at most 2x)
Exits 1 when a figure misses its target (after printing every figure).
Usage: bench/channel.py conda-sign conda-guard make_packages [--packages N] [--repodata-mb M] [--runs R]"""

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if p.returncode != 0:
        sys.exit("benchmark command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd[:5]), p.stderr.decode()))


def timed(cmd, env=None):
    t0 = time.perf_counter()
    run(cmd, env)
    return time.perf_counter() - t0


def best_of(n, cmd, env=None, before=None):
    best = None
    for _ in range(n):
        if before:
            before()
        t = timed(cmd, env)
        best = t if best is None else min(best, t)
    return best


def write_repodata(path, target_bytes):
    """A conda-forge-like index of about target_bytes, signed-index guard included."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    guard = {"channel": "bench", "subdir": "linux-64", "version": 1,
             "signed_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "expires": (now + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    with open(path, "w") as fo:
        fo.write('{\n  "info": %s,\n  "packages": {\n' % json.dumps({"subdir": "linux-64", "guard": guard}))
        i = 0
        first = True
        while fo.tell() < target_bytes:
            name = "pkg%d" % (i // 20)
            fn = "%s-1.%d-h%07x_0.tar.bz2" % (name, i % 20, i)
            h = hashlib.sha256(fn.encode()).hexdigest()
            rec = {"build": "h%07x_0" % i, "build_number": 0,
                   "depends": ["libgcc-ng >=12", "python >=3.10,<3.11.0a0", "python_abi 3.10.* *_cp310", "numpy >=1.21"],
                   "license": "BSD-3-Clause", "license_family": "BSD", "md5": h[:32], "name": name,
                   "sha256": h, "size": 100000 + i, "subdir": "linux-64", "timestamp": 1700000000000 + i,
                   "version": "1.%d" % (i % 20)}
            fo.write(("" if first else ",\n") + "    %s: %s" % (json.dumps(fn), json.dumps(rec, sort_keys=True)))
            first = False
            i += 1
        fo.write('\n  },\n  "packages.conda": {},\n  "removed": [],\n  "repodata_version": 1\n}\n')
    return i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("conda_sign")
    ap.add_argument("conda_guard")
    ap.add_argument("make_packages")
    ap.add_argument("--packages", type=int, default=1000)
    ap.add_argument("--repodata-mb", type=int, default=250)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    sign, guard = os.path.abspath(a.conda_sign), os.path.abspath(a.conda_guard)

    with tempfile.TemporaryDirectory(prefix="condaguard-bench.") as tmp:
        env = dict(os.environ, CONDA_KEYS_DIR=os.path.join(tmp, "keys"),
                   CONDA_GUARD_STATE_DIR=os.path.join(tmp, "state"))
        run([sign, "--keygen", "bench"], env)

        # 1. index N packages from scratch on 1 and 2 cores.
        ch = os.path.join(tmp, "channel")
        run([os.path.abspath(a.make_packages), ch, str(a.packages)])
        total = sum(os.path.getsize(os.path.join(ch, "noarch", f)) for f in os.listdir(os.path.join(ch, "noarch")))

        def fresh():
            shutil.rmtree(os.path.join(ch, "noarch", ".cache"), ignore_errors=True)
        results = {}
        for jobs in (1, 2):
            results[jobs] = best_of(a.runs, [guard, "index", ch, "-j", str(jobs)], env, before=fresh)
        for jobs in (1, 2):
            print("index %d packages (%.1f MB) on %d core%s: %.3f s, %.2f ms per package"
                  % (a.packages, total / 1e6, jobs, "s" if jobs > 1 else "", results[jobs],
                     results[jobs] / a.packages * 1000))
        print("index speed-up on 2 cores: %.2fx" % (results[1] / results[2]))
        t_again = best_of(a.runs, [guard, "index", ch], env)
        print("index again, nothing changed: %.3f s (%.3f ms per package)" % (t_again, t_again / a.packages * 1000))

        # 2. authenticate and parse a large signed index.
        rch = os.path.join(tmp, "big")
        os.makedirs(os.path.join(rch, "linux-64"))
        rd = os.path.join(rch, "linux-64", "repodata.json")
        n = write_repodata(rd, a.repodata_mb * 1000 * 1000)
        run([sign, "-i", "bench", rd], env)
        size = os.path.getsize(rd)
        subprocess.run(["cat", rd], stdout=subprocess.DEVNULL, check=True)  # page cache, for both
        t_openssl = best_of(a.runs, ["openssl", "dgst", "-sha256", rd])
        t_guard = best_of(a.runs, [guard, "verify-channel", rch, "--index-only"], env)
        ratio = t_guard / t_openssl
        met = ratio <= 2
        print("authenticate + parse %.0f MB repodata.json (%d records): conda-guard %.3f s, openssl dgst -sha256 "
              "%.3f s: %.2fx (target <= 2x) %s"
              % (size / 1e6, n, t_guard, t_openssl, ratio, "PASS" if met else "MISS"))
    if not met:
        print("channel benchmark: 1 figure missed its target")
        return 1
    print("channel benchmark: every figure met its target")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured
    sys.exit(main())
