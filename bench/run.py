#!/usr/bin/python3
"""condaguard benchmark (not a test): prints, in one run,
  1. verify throughput on a 1 GiB file against `openssl dgst -sha256` on the same file (target >= 0.95x)
  2. peak RSS of that verification (target <= 32 MB)
  3. 2,000 small signed files verified in one call against one call of the old
     verifier reimplemented in Python (bench/old_verify.py) (target >= 20x faster)
Exits 1 when a figure misses its target (after printing every figure).
Usage: bench/run.py PATH/TO/conda-sign [--big-mib N] [--small N] [--runs N]"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd, env=None):
    """Wall seconds of one run of cmd; output discarded, failure fatal."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit("benchmark command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd[:4]), p.stderr.decode()))
    return elapsed


def best_of(runs, cmd, env=None):
    return min(timed(cmd, env) for _ in range(runs))


def peak_rss_kib(cmd, env=None):
    """Peak RSS of one run, measured by GNU time."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env, check=True)
    return int(out.stderr.decode().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("conda_sign")
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    exe = os.path.abspath(a.conda_sign)
    env = dict(os.environ, CONDA_KEYS_DIR="")

    with tempfile.TemporaryDirectory(prefix="condaguard-bench.") as tmp:
        keys = os.path.join(tmp, "keys")
        subprocess.run([exe, "--keys-dir", keys, "--keygen", "bench"], check=True, stdout=subprocess.DEVNULL, env=env)
        sign = [exe, "--keys-dir", keys, "-i", "bench"]
        verify = [exe, "--keys-dir", keys, "--verify"]

        # 1 + 2: one big file, read from the page cache by both tools.
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as fo, open("/dev/urandom", "rb") as rnd:
            for _ in range(a.big_mib):
                fo.write(rnd.read(1 << 20))
        subprocess.run(sign + [big], check=True, stdout=subprocess.DEVNULL, env=env)
        subprocess.run(["cat", big], stdout=subprocess.DEVNULL, check=True)  # warm the cache
        t_openssl = best_of(a.runs, ["openssl", "dgst", "-sha256", big])
        t_verify = best_of(a.runs, verify + [big], env)
        rss = peak_rss_kib(verify + [big], env)
        mib = a.big_mib
        ratio = t_openssl / t_verify
        missed = 0
        met = ratio >= 0.95
        missed += not met
        print("verify %d MiB: conda-sign %.3f s (%.0f MiB/s), openssl dgst -sha256 %.3f s (%.0f MiB/s): "
              "%.2fx openssl's throughput (target >= 0.95x) %s"
              % (mib, t_verify, mib / t_verify, t_openssl, mib / t_openssl, ratio,
                 "PASS" if met else "MISS"))
        met = rss / 1024 <= 32
        missed += not met
        print("peak RSS verifying %d MiB: %.1f MB (target <= 32 MB) %s"
              % (mib, rss / 1024, "PASS" if met else "MISS"))
        os.unlink(big)

        # 3: many small files in one call, against the old verifier in Python.
        small_dir = os.path.join(tmp, "small")
        os.makedirs(small_dir)
        paths = []
        for i in range(a.small):
            p = os.path.join(small_dir, "pkg%04d-1.0-0.tar.bz2" % i)
            with open(p, "wb") as fo:
                fo.write(os.urandom(4096 + (i * 37) % 8192))
            paths.append(p)
        # Sign in batches to stay below the argument-length limit.
        for i in range(0, len(paths), 500):
            subprocess.run(sign + paths[i:i + 500], check=True, stdout=subprocess.DEVNULL, env=env)
        t_ours = best_of(a.runs, verify + paths, env)
        t_py = best_of(a.runs, ["/usr/bin/python3", os.path.join(HERE, "old_verify.py"), keys] + paths)
        speedup = t_py / t_ours
        met = speedup >= 20
        missed += not met
        print("verify %d small files in one call: conda-sign %.3f s, old verifier in Python %.3f s: "
              "%.1fx faster (target >= 20x) %s"
              % (a.small, t_ours, t_py, speedup, "PASS" if met else "MISS"))
    if missed:
        print("verify benchmark: %d of 3 figures missed their targets" % missed)
        return 1
    print("verify benchmark: every figure met its target")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured
    sys.exit(main())
