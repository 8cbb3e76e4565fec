"""conda.core.solve: a trivial solver with the hook order of conda-plugin.md
§3: solve, then post_solves(repodata_fn, unlink_precs, link_precs) before
any download, extraction or prefix change.

SIMPLIFIED: specs are NAME, NAME=VERSION, NAME==VERSION or
NAME=VERSION=BUILD; depends are followed by name only; the highest version
(then build number) of the first channel that has the name wins; no
pins, no constrains, no virtual packages, no unsatisfiable retry."""

import re

from ..base.context import context
from ..exceptions import PackagesNotFoundError
from ..models.channel import Channel
from .subdir_data import load_subdir

REPODATA_FN = "current_repodata.json"  # what conda passes, whatever it used (§3)


def version_key(v: str):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[._-]", v)]


def parse_spec(spec: str):
    spec = spec.strip()
    if "==" in spec:
        name, version = spec.split("==", 1)
        return name.strip(), version.strip(), None
    parts = spec.split("=")
    return parts[0].strip(), (parts[1] if len(parts) > 1 else None), (parts[2] if len(parts) > 2 else None)


def index_records(channels):
    out = []
    for value in channels:
        for subdir in context.subdirs:
            out.extend(load_subdir(Channel(value, subdir)))
    return out


def pick(records, channels, name, version=None, build=None):
    order = {Channel(c).canonical_name: i for i, c in enumerate(channels)}
    cands = [r for r in records if r.name == name and (version is None or r.version == version)
             and (build is None or r.build == build)]
    if not cands:
        return None
    best_channel = min(order.get(r.channel.canonical_name, 99) for r in cands)
    cands = [r for r in cands if order.get(r.channel.canonical_name, 99) == best_channel]
    return max(cands, key=lambda r: (version_key(r.version), r.build_number))


def solve(specs, installed, channels):
    """(unlink_precs, link_precs), dependencies first."""
    records = index_records(channels)
    chosen, missing = {}, []

    def visit(name, version=None, build=None):
        if name in chosen:
            return
        rec = pick(records, channels, name, version, build)
        if rec is None:
            missing.append(name)
            return
        chosen[name] = None  # placeholder: cycles
        for dep in rec.depends:
            visit(dep.split()[0])
        del chosen[name]
        chosen[name] = rec

    for spec in specs:
        visit(*parse_spec(spec))
    if missing:
        raise PackagesNotFoundError(
            "The following packages are not available from current channels:\n\n"
            + "\n".join(f"  - {m}" for m in missing), packages=missing,
            channel_urls=[str(c) for c in channels])
    by_name = {r.name: r for r in installed}
    link, unlink = [], []
    for name, rec in chosen.items():
        old = by_name.get(name)
        if old is not None and old.fn == rec.fn and old.channel == rec.channel:
            continue
        if old is not None:
            unlink.append(old)
        link.append(rec)
    return tuple(unlink), tuple(link)


def solve_for_transaction(specs, installed, channels, remove=()):
    if remove:
        unlink = tuple(r for r in installed if r.name in remove)
        missing = [n for n in remove if n not in {r.name for r in installed}]
        if missing:
            raise PackagesNotFoundError("The following packages are missing from the target "
                                        "environment:\n" + "\n".join(f"  - {m}" for m in missing))
        link = ()
    else:
        unlink, link = solve(specs, installed, channels)
    context.plugin_manager.invoke_post_solves(REPODATA_FN, unlink, link)
    return unlink, link
