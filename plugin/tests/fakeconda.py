"""A stand-in for the parts of conda the plugin touches, installed into
sys.modules (there is no conda on the test machine). Only what
conda-plugin.md names exists here, so the plugin touching anything else
fails the tests. ``STATE`` is what the test controls and observes."""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional


class CondaVerificationError(Exception):
    pass


@dataclass
class CondaSubcommand:
    name: str
    summary: str
    action: Callable[..., Any]
    configure_parser: Optional[Callable[..., Any]] = None


@dataclass
class CondaPostSolve:
    name: str
    action: Callable[..., Any]


@dataclass
class CondaPreCommand:
    name: str
    action: Callable[..., Any]
    run_for: set


@dataclass
class CondaSetting:
    name: str
    description: str
    parameter: Any
    aliases: tuple = ()


class PrimitiveParameter:
    def __init__(self, default: Any, element_type: Any = None) -> None:
        self.default = default
        self.element_type = element_type


class CondaSpecs:
    """The hook specs of conda >= 24.3 (the plugin asks for conda_settings)."""

    def conda_subcommands(self): ...
    def conda_pre_commands(self): ...
    def conda_post_solves(self): ...
    def conda_settings(self): ...


def hookimpl(function: Callable[..., Any]) -> Callable[..., Any]:
    return function


class Channel:
    """str() is the subdir URL without credentials, as in conda."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = url

    def __str__(self) -> str:
        return self._url


class Record:
    """A PackageRecord with exactly the attributes conda-plugin.md section 3 lists
    for link_precs that the plugin may read."""

    __slots__ = ("url", "fn", "sha256", "md5", "size", "name", "version", "build", "subdir", "channel")

    def __init__(self, *, channel_url: str, fn: str, token: str = "", size: int = 1234,
                 sha256: str = "a" * 64, md5: str = "b" * 32) -> None:
        stem = fn[: -len(".tar.bz2")] if fn.endswith(".tar.bz2") else fn[: -len(".conda")]
        self.name, self.version, self.build = stem.rsplit("-", 2)
        self.fn = fn
        self.subdir = channel_url.rstrip("/").rsplit("/", 1)[-1]
        self.channel = Channel(channel_url)
        if token:
            scheme, rest = channel_url.split("://", 1)
            host, path = rest.split("/", 1)
            self.url = f"{scheme}://{host}/t/{token}/{path}/{fn}"
        else:
            self.url = f"{channel_url}/{fn}"
        self.sha256, self.md5, self.size = sha256, md5, size


class MatchSpec:
    def __init__(self, url: str, **checksums: str) -> None:
        self.url = url
        self.checksums = checksums


def stem_of(fn: str) -> str:
    for ext in (".tar.bz2", ".conda"):
        if fn.endswith(ext):
            return fn[: -len(ext)]
    raise ValueError(fn)


def fn_of(ref: Any) -> str:
    if isinstance(ref, MatchSpec):
        return ref.url.rsplit("/", 1)[-1]
    return ref.fn


@dataclass
class State:
    pkgs: str = ""
    links: Dict[str, str] = field(default_factory=dict)  # fn -> folder conda would link
    actions: Dict[str, tuple] = field(default_factory=dict)  # fn -> (fetch, extract)
    calls: List[tuple] = field(default_factory=list)

    def link_of(self, fn: str) -> str:
        return self.links.get(fn, os.path.join(self.pkgs, stem_of(fn)))


STATE = State()


class CacheRecord:
    __slots__ = ("fn", "extracted_package_dir")

    def __init__(self, fn: str) -> None:
        self.fn = fn
        self.extracted_package_dir = STATE.link_of(fn)


class PackageCacheData:
    @classmethod
    def clear(cls) -> None:
        STATE.calls.append(("clear",))

    @classmethod
    def get_entry_to_link(cls, ref: Any) -> CacheRecord:
        STATE.calls.append(("get_entry_to_link", type(ref).__name__, fn_of(ref)))
        return CacheRecord(fn_of(ref))

    @classmethod
    def query_all(cls, spec: Any):
        STATE.calls.append(("query_all", type(spec).__name__, fn_of(spec)))
        yield CacheRecord(fn_of(spec))


class ProgressiveFetchExtract:
    @staticmethod
    def make_actions_for_record(ref: Any) -> tuple:
        STATE.calls.append(("make_actions_for_record", type(ref).__name__, fn_of(ref)))
        return STATE.actions.get(fn_of(ref), (None, None))


class Context:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pkgs_dirs: tuple = ()
        self.dry_run = False
        self.quiet = True
        self.target_prefix = ""
        self.root_prefix = "/nonexistent/conda-root"
        self.envs_dirs: tuple = ()
        self._argparse_args = types.SimpleNamespace(file=[], packages=[], name=None, prefix=None,
                                                    clone=None)
        self.plugins = types.SimpleNamespace(condaguard_bin_dir="")


context = Context()


def yaml_loads(text: str) -> Any:
    """conda.common.serialize.yaml.loads for the top level of an
    environment file: ``key: value`` lines (value kept as a string, or None
    when empty), indented and ``- `` lines skipped; anything else raises."""
    doc: Dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line[0] in " \t-":
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"not a mapping line: {line!r}")
        value = value.strip()
        doc[key.strip()] = value.strip("'\"") if value else None
    return doc


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def install() -> None:
    """Puts the stand-in tree into sys.modules (once per process)."""
    if getattr(sys.modules.get("conda"), "__fake__", False):
        return
    _module("conda", __fake__=True, __path__=[])
    _module("conda.plugins", __path__=[], hookimpl=hookimpl)
    _module("conda.plugins.types", CondaSubcommand=CondaSubcommand, CondaPostSolve=CondaPostSolve,
            CondaPreCommand=CondaPreCommand, CondaSetting=CondaSetting)
    _module("conda.plugins.hookspec", CondaSpecs=CondaSpecs)
    _module("conda.exceptions", CondaVerificationError=CondaVerificationError)
    _module("conda.base", __path__=[])
    _module("conda.base.context", context=context)
    _module("conda.core", __path__=[])
    _module("conda.core.package_cache_data", PackageCacheData=PackageCacheData,
            ProgressiveFetchExtract=ProgressiveFetchExtract)
    _module("conda.models", __path__=[])
    _module("conda.models.match_spec", MatchSpec=MatchSpec)
    _module("conda.common", __path__=[])
    _module("conda.common.configuration", PrimitiveParameter=PrimitiveParameter)
    _module("conda.common.serialize", __path__=[])
    _module("conda.common.serialize.yaml", loads=yaml_loads)


def reset(pkgs: str) -> None:
    context.reset()
    context.pkgs_dirs = (pkgs,)
    STATE.pkgs = pkgs
    STATE.links.clear()
    STATE.actions.clear()
    STATE.calls.clear()
