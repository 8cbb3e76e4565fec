"""A stand-in for `conda-guard` / `conda-sign`, written by the tests into a
temporary bin folder. It records its argv and stdin (calls.json beside it),
then answers as scenario.json says; by default as `conda-guard gate` would,
per the protocol in conda_guard_plugin/core.py, placing each package in
`<pkgs>/<fn without extension>`. scenario "unverified" {fn: [channel, reason]}
answers those UNVERIFIED (channel None: without "unsigned_channel"), with one
UNVERIFIED index unless scenario "indexes" says otherwise."""

from __future__ import annotations

import json
import os
import stat
import sys
from typing import Any, Dict, List

SCRIPT = r'''
import json, os, signal, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "scenario.json")) as f:
    sc = json.load(f)
data = sys.stdin.buffer.read() if sys.argv[1:] == ["gate"] else b""
calls_path = os.path.join(here, "calls.json")
calls = []
if os.path.exists(calls_path):
    with open(calls_path) as f:
        calls = json.load(f)
calls.append({"argv": sys.argv, "stdin": data.decode("utf-8")})
with open(calls_path, "w") as f:
    json.dump(calls, f)
if sys.argv[1:] != ["gate"]:
    sys.exit(sc.get("tool_exit", 0))
if sc.get("sleep"):
    time.sleep(sc["sleep"])
if sc.get("crash"):
    os.kill(os.getpid(), signal.SIGKILL)
if "stdout" in sc:
    sys.stdout.write(sc["stdout"])
    sys.exit(sc.get("exit", 0))
req = json.loads(data)
packages = []
unverified = sc.get("unverified", {})
for r in req["records"]:
    verdict, reason = sc.get("verdicts", {}).get(r["fn"], ["VALID", "signed by MyKey"])
    if r["fn"] in unverified:
        verdict, reason = "UNVERIFIED", unverified[r["fn"]][1]
    placed = None
    if not req["dry_run"] and verdict in ("VALID", "UNVERIFIED") and not sc.get("no_placed"):
        stem = r["fn"][:-8] if r["fn"].endswith(".tar.bz2") else r["fn"][:-6]
        placed = os.path.join(req["pkgs_dirs"][0], stem)
        os.makedirs(placed, exist_ok=True)
    item = {"fn": r["fn"], "url": "redacted", "verdict": verdict, "reason": reason, "placed": placed}
    if r["fn"] in unverified and unverified[r["fn"]][0] is not None:
        item["unsigned_channel"] = unverified[r["fn"]][0]
    packages.append(item)
if sc.get("drop"):
    packages = packages[: -sc["drop"]]
indexes = sc.get("indexes", [{"path": "https://conda.anaconda.org/conda-forge/linux-64/repodata.json",
                              "verdict": "UNVERIFIED", "reason": "index not authenticated"}]
                  if unverified else [])
status = sc.get("status", "ok" if all(p["verdict"] in ("VALID", "UNVERIFIED") for p in packages)
                else "fail")
out = {"version": 1, "command": "gate", "status": status,
       "dry_run": sc.get("answer_dry_run", req["dry_run"]), "indexes": indexes, "packages": packages}
if "message" in sc:
    out["message"] = sc["message"]
sys.stdout.write(json.dumps(out))
sys.exit(sc.get("exit", {"ok": 0, "fail": 1}.get(status, 2)))
'''


def write(bin_dir: str, name: str) -> str:
    path = os.path.join(bin_dir, name)
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\n{SCRIPT}")
    os.chmod(path, stat.S_IRWXU)
    return path


def set_scenario(bin_dir: str, **scenario: Any) -> None:
    with open(os.path.join(bin_dir, "scenario.json"), "w") as f:
        json.dump(scenario, f)


def calls(bin_dir: str) -> List[Dict[str, Any]]:
    path = os.path.join(bin_dir, "calls.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)
