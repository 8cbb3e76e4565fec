"""conda.core.link / prefix_data (conda-formats §2.6, §4): link the extracted
cache folder of each record into the prefix, write
conda-meta/NAME-VERSION-BUILD.json and conda-meta/history; unlink.

SIMPLIFIED: files are always copied (link type 3), no prefix placeholder
rewriting, no noarch: python, no link scripts, no rollback."""

import glob
import json
import os
import shutil
import sys
import time

from ..base.context import context
from ..common.url import mask_anaconda_token, remove_auth
from ..exceptions import SafetyError
from ..models.records import PrefixRecord
from .package_cache_data import PackageCacheData, strip_ext


def installed_records(prefix: str):
    out = []
    for path in sorted(glob.glob(os.path.join(prefix, "conda-meta", "*.json"))):
        with open(path) as f:
            data = json.load(f)
        files = data.pop("files", [])
        for k in ("paths_data", "link", "extracted_package_dir", "package_tarball_full_path",
                  "requested_spec", "requested_specs"):
            data.pop(k, None)
        out.append(PrefixRecord(files=files, meta_path=path, **data))
    return out


def _paths(extracted: str):
    """info/paths.json, else info/files (§2.3)."""
    pj = os.path.join(extracted, "info", "paths.json")
    if os.path.isfile(pj):
        with open(pj) as f:
            return json.load(f).get("paths", [])
    try:
        with open(os.path.join(extracted, "info", "files")) as f:
            return [{"_path": line.strip(), "path_type": "hardlink"} for line in f if line.strip()]
    except OSError:
        return []


def verify(entries) -> None:
    """§2.6: each hardlink's size against the folder's own paths.json;
    safety_checks warn (default) only prints."""
    mode = context.safety_checks
    if mode == "disabled":
        return
    for entry, paths in entries:
        for p in paths:
            src = os.path.join(entry.extracted_package_dir, p["_path"])
            if p.get("path_type", "hardlink") != "hardlink" or p.get("size_in_bytes") is None:
                continue
            if not os.path.lexists(src) or os.path.getsize(src) != p["size_in_bytes"]:
                err = SafetyError(f"The package for {entry.name} located at {entry.extracted_package_dir}\n"
                                  f"appears to be corrupted. The path '{p['_path']}'\nhas an incorrect size.")
                if mode == "enabled":
                    raise err
                print(f"SafetyError: {err}", file=sys.stderr)


def unlink(prefix: str, rec) -> None:
    for rel in rec.files:
        path = os.path.join(prefix, rel)
        if os.path.lexists(path):
            os.unlink(path)
    if rec.meta_path and os.path.exists(rec.meta_path):
        os.unlink(rec.meta_path)


def link(prefix: str, unlink_precs, link_precs, requested=()) -> None:
    entries = [(e, _paths(e.extracted_package_dir))
               for e in (PackageCacheData.get_entry_to_link(r) for r in link_precs)]
    verify(entries)
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    for rec in unlink_precs:
        unlink(prefix, rec)
    for (entry, paths), rec in zip(entries, link_precs):
        files, paths_data = [], []
        for p in paths:
            src = os.path.join(entry.extracted_package_dir, p["_path"])
            dst = os.path.join(prefix, p["_path"])
            kind = p.get("path_type", "hardlink")
            if kind == "directory":
                os.makedirs(dst, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.lexists(dst):
                os.unlink(dst)
            if kind == "softlink" or os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
            files.append(p["_path"])
            data = dict(p)
            if kind == "hardlink" and p.get("sha256"):
                data["sha256_in_prefix"] = p["sha256"]  # copied, not re-hashed (§4.1)
            paths_data.append(data)
        with open(os.path.join(entry.extracted_package_dir, "info", "repodata_record.json")) as f:
            meta = json.load(f)
        meta.update(url=mask_anaconda_token(remove_auth(meta.get("url") or "")),
                    files=files, paths_data={"paths_version": 1, "paths": paths_data},
                    link={"source": entry.extracted_package_dir, "type": 3},
                    extracted_package_dir=entry.extracted_package_dir,
                    package_tarball_full_path=entry.package_tarball_full_path
                    or os.path.join(os.path.dirname(entry.extracted_package_dir), rec.fn),
                    requested_spec=next((s for s in requested if s.split("=")[0].strip() == rec.name), None))
        name = f"{rec.name}-{rec.version}-{rec.build}.json"
        with open(os.path.join(prefix, "conda-meta", name), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
    with open(os.path.join(prefix, "conda-meta", "history"), "a") as f:
        f.write(f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==\n# cmd: {' '.join(sys.argv)}\n")
        for r in unlink_precs:
            f.write(f"-{r.channel.canonical_name}/{r.subdir}::{r.dist_name}\n")
        for r in link_precs:
            f.write(f"+{r.channel.canonical_name}/{r.subdir}::{r.dist_name}\n")


__all__ = ["link", "unlink", "installed_records", "strip_ext"]
