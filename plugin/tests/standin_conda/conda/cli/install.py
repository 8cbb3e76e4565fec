"""conda.cli.install: install / create / update / remove (conda-formats §3,
§5.2, §6; conda-plugin.md §3, §5)."""

import json
import os
import shutil
import sys

from ..base.context import context
from ..common.path import expand
from ..common.url import is_url, join_url, path_to_url
from ..core.link import installed_records, link
from ..core.package_cache_data import PackageCacheData, ProgressiveFetchExtract
from ..core.solve import solve_for_transaction
from ..exceptions import CondaError, CondaSystemExit, CondaValueError, DryRunExit, ParseError
from ..models.match_spec import MatchSpec
import re

# §5.2: [<dir>/]<fn>[#<md5> | #<sha256> | #sha256:<sha256>], anchored at the end
URL_PAT = re.compile(r"(?:(?P<url_p>.+)(?:[/\\]))?(?P<fn>[^/\\#]+(?:\.tar\.bz2|\.conda))"
                     r"(?:#((?P<md5>[0-9a-f]{32})|((sha256:)?(?P<sha256>[0-9a-f]{64}))))?$")


class EnvironmentLocationNotFound(CondaError):
    pass


class NoChannelsConfiguredError(CondaError):
    pass


def _read_lines(path: str):
    with open(path) as f:
        return [line.strip() for line in f]


def explicit_specs(lines):
    """§5.2: blank and # lines dropped; every other line but @EXPLICIT is a
    URL or a path (made a file:// URL); anything else is a ParseError."""
    specs = []
    for line in lines:
        if not line or line.startswith("#") or line == "@EXPLICIT":
            continue
        spec = line if is_url(line) else path_to_url(expand(line))
        m = URL_PAT.match(spec)
        if m is None:
            raise ParseError(f"Could not parse explicit URL: {line}")
        url = join_url(m.group("url_p"), m.group("fn"))
        specs.append(MatchSpec(url, md5=m.group("md5"), sha256=m.group("sha256")))
    return specs


def _is_package_arg(arg: str) -> bool:
    return URL_PAT.match(arg) is not None and (is_url(arg) or arg.split("#", 1)[0].endswith((".tar.bz2", ".conda")))


def _confirm(question: str = "Proceed ([y]/n)? ") -> None:
    if context.always_yes:
        return
    print(question, end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("", "y", "yes"):
        raise CondaSystemExit("Exiting.")


def _json_out(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


def _print_plan(prefix, unlink, link_precs, fetch) -> None:
    if context.json:
        return
    print("\n## Package Plan ##\n\n  environment location: %s\n" % prefix)
    if fetch:
        print("\nThe following packages will be downloaded:\n")
        for r in fetch:
            print(f"    {r.dist_name:<40} {r.size or 0:>10}")
    if link_precs:
        print("\nThe following NEW packages will be INSTALLED:\n")
        for r in link_precs:
            print(f"  {r.name:<20} {r.channel.name}/{r.subdir}::{r.dist_name}")
    if unlink:
        print("\nThe following packages will be REMOVED:\n")
        for r in unlink:
            print(f"  {r.dist_name}")
    print()


def install(args, command: str) -> int:
    prefix = context.target_prefix
    args_packages = list(getattr(args, "packages", None) or [])
    if command == "create":
        # §3 (conda-plugin.md): create over an existing prefix deletes it
        # before the solve, so before post_solves runs.
        if os.path.lexists(prefix) and not context.dry_run:
            _confirm(f"WARNING: A conda environment already exists at '{prefix}'\n"
                     "Remove existing environment? ([y]/n) ")
            shutil.rmtree(prefix) if os.path.isdir(prefix) and not os.path.islink(prefix) else os.unlink(prefix)
    elif command != "remove" and not os.path.isdir(os.path.join(prefix, "conda-meta")):
        raise EnvironmentLocationNotFound(f"Not a conda environment: {prefix}")
    if command == "remove":
        if not os.path.isdir(os.path.join(prefix, "conda-meta")):
            raise EnvironmentLocationNotFound(f"Not a conda environment: {prefix}")
        installed = installed_records(prefix)
        unlink, link_precs = solve_for_transaction((), installed, (), remove=args_packages)
        return _transact(prefix, unlink, link_precs, args_packages)

    # Explicit installs (§5.2): --file with @EXPLICIT and package paths/URLs
    # bypass the solver and post_solves; fetched while parsed.
    explicit_lines, spec_lines = [], []
    for f in getattr(args, "file", None) or []:
        lines = _read_lines(f)
        if "@EXPLICIT" in lines:
            explicit_lines.extend(lines)
        else:
            spec_lines.extend(line for line in lines if line and not line.startswith("#"))
    explicit_lines.extend(a for a in args_packages if _is_package_arg(a))
    specs = [a for a in args_packages if not _is_package_arg(a)] + spec_lines
    if explicit_lines:
        mspecs = explicit_specs(explicit_lines)
        if context.dry_run:
            raise DryRunExit()
        ProgressiveFetchExtract(mspecs).execute()
        records = []
        for s in mspecs:
            found = PackageCacheData.query_all(s)
            if not found:
                raise CondaError(f"No package '{s.fn}' found in cache directories.")
            records.append(found[0])
        installed = installed_records(prefix) if os.path.isdir(prefix) else []
        names = {r.name for r in records}
        unlink = tuple(r for r in installed if r.name in names)
        os.makedirs(prefix, exist_ok=True)
        link(prefix, unlink, tuple(records))
        return 0

    channels = context.channels
    if not channels:
        raise NoChannelsConfiguredError("No channels configured (use -c CHANNEL).")
    installed = installed_records(prefix) if os.path.isdir(os.path.join(prefix, "conda-meta")) else []
    unlink, link_precs = solve_for_transaction(specs, installed, channels)
    if not unlink and not link_precs and command != "create":
        if context.json:
            _json_out({"message": "All requested packages already installed.", "success": True})
        else:
            print("\n# All requested packages already installed.\n")
        return 0
    return _transact(prefix, unlink, link_precs, specs)


def _transact(prefix, unlink, link_precs, specs) -> int:
    pfe = ProgressiveFetchExtract(link_precs)
    pfe.prepare()
    fetch = [ref for ref, _ in pfe.cache_actions]
    _print_plan(prefix, unlink, link_precs, fetch)
    actions = {"FETCH": [r.dump() for r in fetch], "PREFIX": prefix}
    if unlink:
        actions["UNLINK"] = [r.dist_fields_dump() for r in unlink]
    if link_precs:
        actions["LINK"] = [r.dist_fields_dump() for r in link_precs]
    if context.dry_run:  # §6: the plan, then DryRunExit (exit 0); nothing changed
        if context.json:
            _json_out({"actions": actions, "dry_run": True, "prefix": prefix, "success": True})
        raise DryRunExit()
    _confirm()
    ProgressiveFetchExtract(link_precs).execute()
    os.makedirs(prefix, exist_ok=True)
    link(prefix, unlink, link_precs, requested=specs)
    if context.json:
        _json_out({"actions": actions, "prefix": prefix, "success": True})
    return 0


__all__ = ["install", "CondaValueError"]
