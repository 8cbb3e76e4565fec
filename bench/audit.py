#!/usr/bin/python3
"""condaguard audit benchmark (not a test): prints, in one run, `conda-guard audit`
of an environment of about 50,000 files (100 signed .conda packages of 500 files,
built by bench/make_env with the test suite's environment builder) against
`sha256sum` over the same installed files (one process through xargs, as a user
would check them). Throughput is the installed files' bytes per second of wall time;
the audit also hashes and reads every signed archive, which sha256sum does not.
Target: the audit at least 0.8x sha256sum's throughput (run with -j 2: 2 cores).
Exits 1 when the figure misses its target (after printing every figure).
Usage: bench/audit.py conda-guard make_env [--packages N] [--files F] [--runs R]"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def timed(cmd, **kw):
    """Wall seconds, the process, and its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, p, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("conda_guard")
    ap.add_argument("make_env")
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.8)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="condaguard-bench-audit-") as tmp:
        t = time.perf_counter()
        subprocess.run([a.make_env, tmp, str(a.packages), str(a.files)], check=True)
        print("built %d packages of %d files in %.1f s" % (a.packages, a.files, time.perf_counter() - t))
        env = os.path.join(tmp, "env")
        files = []
        total = 0
        for d, dirs, names in os.walk(env):
            if os.path.relpath(d, env).split(os.sep)[0] == "conda-meta":
                continue
            for n in names:
                p = os.path.join(d, n)
                if os.path.isfile(p) and not os.path.islink(p):
                    files.append(p)
                    total += os.path.getsize(p)
        archives = sum(os.path.getsize(os.path.join(tmp, "pkgs", n))
                       for n in os.listdir(os.path.join(tmp, "pkgs")) if n.endswith(".conda"))
        print("environment: %d files, %.1f MB; signed archives %.1f MB" % (len(files), total / 1e6, archives / 1e6))
        listing = b"\0".join(p.encode() for p in files) + b"\0"
        sha_cmd = ["xargs", "-0", "sha256sum"]
        audit_cmd = [a.conda_guard, "audit", "-p", env, "--pkgs-dir", os.path.join(tmp, "pkgs"),
                     "--keys-dir", os.path.join(tmp, "keys"), "-j", "2", "--json"]
        run_env = dict(os.environ, HOME=tmp, CONDARC=os.path.join(tmp, "no-condarc"))
        best_sha = best_audit = None
        for r in range(a.runs):
            ts, ps, cs = timed(sha_cmd, input=listing)
            if ps.returncode != 0:
                sys.exit("sha256sum failed: %s" % ps.stderr.decode())
            ta, pa, ca = timed(audit_cmd, env=run_env)
            if pa.returncode != 0:
                sys.exit("conda-guard audit found something (%d) in a clean environment:\n%s%s"
                         % (pa.returncode, pa.stdout.decode()[:4000], pa.stderr.decode()))
            doc = json.loads(pa.stdout)
            checked = doc["summary"]["files_checked"]
            print("run %d: sha256sum %.2f s (%.0f MB/s, %.2f CPU s); audit %.2f s (%.0f MB/s, %.2f CPU s, "
                  "%d files checked, %.0f MB hashed)"
                  % (r + 1, ts, total / ts / 1e6, cs, ta, total / ta / 1e6, ca, checked,
                     doc["summary"]["bytes_hashed"] / 1e6))
            best_sha = ts if best_sha is None else min(best_sha, ts)
            best_audit = ta if best_audit is None else min(best_audit, ta)
        print("load average while running: %.1f (on %d cores): a loaded machine gives the audit's "
              "threads no second core" % (os.getloadavg()[0], os.cpu_count()))
        ratio = best_sha / best_audit
        ok = ratio >= a.target
        print("audit throughput %.2fx sha256sum's (best of %d; target >= %.2fx): %s"
              % (ratio, a.runs, a.target, "ok" if ok else "MISSED"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
