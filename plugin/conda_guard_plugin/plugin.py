"""conda's hooks for conda-guard (entry point group ``conda``).

- ``conda sign ARGS`` / ``conda guard ARGS`` run ``conda-sign`` / ``conda-guard``
  with ARGS untouched and return their exit status.
- ``conda_post_solves`` hands every record conda is about to link to
  ``conda-guard gate`` (on stdin), which verifies each package and places it in
  the package cache; then checks that conda will link exactly those folders.
- ``conda_pre_commands`` does the same for explicit installs (they bypass the
  solver), and refuses ``conda create`` over an existing non-empty folder,
  which conda would delete before any later check could refuse.

Any refusal or failure raises ``CondaVerificationError``: conda stops before
it downloads, extracts or changes a prefix. A plugin whose import raises is
skipped by conda, so this module imports only ``conda.plugins`` at load time;
everything else is imported when a hook runs, and every hook turns any
exception into a refusal.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Iterator, List

from . import core

try:
    from conda.plugins import hookimpl
except ImportError:  # pragma: no cover - conda always has it; pluggy is its marker
    import pluggy

    hookimpl = pluggy.HookimplMarker("conda")

SETTING_BIN_DIR = "condaguard_bin_dir"
PRE_COMMANDS = frozenset({"install", "create", "update", "env_create", "env_update", "remove"})
EXPLICIT_COMMANDS = frozenset({"install", "create", "update", "env_create", "env_update"})


class _State:
    """What one conda run told us: the command, set by the pre-command hook."""

    command = "install"


def _types() -> Any:
    """conda.plugins.types (24.11+, the only place from 26.9) or the older
    re-exports in conda.plugins."""
    try:
        from conda.plugins import types
        return types
    except ImportError:
        import conda.plugins as types
        return types


def _has_hookspec(name: str) -> bool:
    try:
        from conda.plugins.hookspec import CondaSpecs
    except Exception:
        return False
    return hasattr(CondaSpecs, name)


def _context() -> Any:
    from conda.base.context import context
    return context


def _configured_bin_dir() -> str:
    plugins = getattr(_context(), "plugins", None)
    value = getattr(plugins, SETTING_BIN_DIR, None) if plugins is not None else None
    return value if isinstance(value, str) else ""


def _find(name: str) -> str:
    import os

    return core.find_binary(name, configured_dir=_configured_bin_dir(), python_prefix=sys.prefix,
                            path=os.environ.get("PATH"))


def _refuse(message: str) -> None:
    from conda.exceptions import CondaVerificationError

    raise CondaVerificationError(message)


def _say(text: str) -> None:
    if not getattr(_context(), "quiet", False):
        print(f"conda-guard: {text}", file=sys.stderr)


def _warn(line: str) -> None:
    """A line that --quiet does not silence (an UNVERIFIED package)."""
    print(line, file=sys.stderr)


# ---------------------------------------------------------------------------
# conda sign / conda guard


def _run_tool(name: str, args: Any) -> int:
    try:
        import subprocess

        binary = _find(name)
        return core.exit_status(subprocess.call([binary, *args]))
    except BaseException as e:  # conda prints a traceback for anything raised here
        if isinstance(e, KeyboardInterrupt):
            return 130
        print(f"conda-guard: {name}: {core.one_line(e)}", file=sys.stderr)
        return 2


def _sign(args: Any) -> int:
    return _run_tool(core.SIGN_BIN, args)


def _guard(args: Any) -> int:
    return _run_tool(core.GUARD_BIN, args)


@hookimpl
def conda_subcommands() -> Iterator[Any]:
    types = _types()
    yield types.CondaSubcommand(name="sign", summary="Sign and verify packages (conda-sign).",
                                action=_sign)
    yield types.CondaSubcommand(name="guard", summary="Verify channels and packages (conda-guard).",
                                action=_guard)


# ---------------------------------------------------------------------------
# The gate


def _gate(records: List[Dict[str, Any]], checks_for: Any) -> None:
    """Runs the gate over ``records`` and, outside a dry run, the self-check
    built by ``checks_for(placed)``; raises CondaVerificationError on anything
    but a clean verdict. A package the gate answers UNVERIFIED (its channel
    allowed unsigned by the policy) passes with a warning on stderr that
    --quiet does not silence, and is counted in the summary."""
    try:
        context = _context()
        dry_run = bool(getattr(context, "dry_run", False))
        request = core.build_request(command=_State.command, dry_run=dry_run,
                                     pkgs_dirs=list(context.pkgs_dirs), records=records)
        answer = core.run_gate(_find(core.GUARD_BIN), request)
        for line in answer.warnings():
            _warn(line)
        if dry_run:
            for line in answer.dry_run_lines():
                _say(line)
            return
        for line in answer.cleaned_lines():
            _say(line)
        placed = answer.placed
        from conda.core.package_cache_data import PackageCacheData, ProgressiveFetchExtract

        PackageCacheData.clear()
        core.self_check(checks_for(placed, PackageCacheData),
                        make_actions_for_record=ProgressiveFetchExtract.make_actions_for_record,
                        get_entry_to_link=PackageCacheData.get_entry_to_link)
        _say(answer.summary("verified and placed"))
    except core.GateRefused as e:
        _refuse(str(e))
    except Exception as e:
        if type(e).__name__ == "CondaVerificationError":
            raise
        _refuse(f"conda-guard: internal error, refusing: {type(e).__name__}: {core.one_line(e)}")


def _post_solve(repodata_fn: str, unlink_precs: Any, link_precs: Any) -> None:
    if not link_precs:
        return
    precs = list(link_precs)
    try:
        records = [core.record_from_prec(p) for p in precs]
    except Exception as e:
        _refuse(f"conda-guard: cannot read the records to link: {core.one_line(e)}")
        return

    def checks(placed: Dict[str, Any], _pcd: Any) -> List[core.LinkCheck]:
        return [core.LinkCheck(fn=p.fn, placed=placed[p.fn], fetch_ref=p, link_ref=lambda p=p: p)
                for p in precs]

    _gate(records, checks)


@hookimpl
def conda_post_solves() -> Iterator[Any]:
    yield _types().CondaPostSolve(name="conda-guard", action=_post_solve)


def _url_functions() -> core.UrlFunctions:
    """conda's URL helpers (conda matches explicit URLs as exact strings)."""
    try:
        from conda.common.path import expand
        from conda.common.url import is_url, join_url, path_to_url
    except ImportError:
        return core.STDLIB_URL_FUNCTIONS
    return core.UrlFunctions(is_url=is_url, path_to_url=path_to_url, expand=expand,
                             join_url=join_url)


def _yaml_loader() -> Any:
    """conda's own YAML reader: conda.common.serialize.yaml.loads (25.x,
    26.x), else conda.common.serialize.yaml_safe_load (24.x); None when
    neither exists (then a file-named target cannot be read: refused)."""
    import importlib

    try:
        loads = getattr(importlib.import_module("conda.common.serialize.yaml"), "loads", None)
        if callable(loads):
            return loads
    except ImportError:
        pass
    try:
        loads = getattr(importlib.import_module("conda.common.serialize"), "yaml_safe_load", None)
    except ImportError:
        return None
    return loads if callable(loads) else None


def _file_targets(context: Any, files: Any) -> Any:
    """For a create without -n/-p: the folders conda could take as its target
    from the one environment file given (read as conda reads it), or None when
    no file is given."""
    path = core.env_file_of(files)
    if path is None:
        return None

    def targets() -> List[str]:
        name, prefix = core.read_env_file_target(path, _yaml_loader())
        urls = _url_functions()
        return core.env_file_targets(path, name, prefix, envs_dirs=list(context.envs_dirs),
                                     root_prefix=str(context.root_prefix), expand=urls.expand)

    return targets


def _pre_command(command: str) -> None:
    _State.command = command
    if command not in EXPLICIT_COMMANDS:
        return
    try:
        context = _context()
        args = getattr(context, "_argparse_args", None)
        core.check_create_target(
            command=command, prefix=getattr(context, "target_prefix", None),
            named=bool(getattr(args, "name", None) or getattr(args, "prefix", None)),
            clone=bool(getattr(args, "clone", None)), dry_run=bool(getattr(context, "dry_run", False)),
            file_targets=_file_targets(context, getattr(args, "file", None)))
        urls = _url_functions()
        entries = core.explicit_entries(
            core.explicit_lines_from_arguments(getattr(args, "file", None),
                                               getattr(args, "packages", None), urls), urls)
    except core.GateRefused as e:
        _refuse(str(e))
        return
    except Exception as e:
        _refuse(f"conda-guard: internal error, refusing: {type(e).__name__}: {core.one_line(e)}")
        return
    if not entries:
        return

    def checks(placed: Dict[str, Any], pcd: Any) -> List[core.LinkCheck]:
        from conda.models.match_spec import MatchSpec

        out = []
        for e in entries:
            # conda fetches MatchSpec(url, md5|sha256), then links the first
            # cache record matching it (conda/misc.py).
            spec = MatchSpec(e.url, **e.checksums())
            out.append(core.LinkCheck(fn=e.fn, placed=placed[e.fn], fetch_ref=spec,
                                      link_ref=lambda spec=spec: next(iter(pcd.query_all(spec)), None)))
        return out

    _gate([e.request_record() for e in entries], checks)


@hookimpl
def conda_pre_commands() -> Iterator[Any]:
    yield _types().CondaPreCommand(name="conda-guard", action=_pre_command, run_for=set(PRE_COMMANDS))


if _has_hookspec("conda_settings"):  # conda 24.3+

    @hookimpl
    def conda_settings() -> Iterator[Any]:
        from conda.common.configuration import PrimitiveParameter

        yield _types().CondaSetting(
            name=SETTING_BIN_DIR,
            description="Folder holding conda-guard and conda-sign (default: beside conda's "
                        "Python, then PATH).",
            parameter=PrimitiveParameter("", element_type=str),
        )
