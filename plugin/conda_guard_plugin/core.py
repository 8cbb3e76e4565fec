"""The conda-guard plugin's logic, without conda.

Nothing here imports conda: the hooks in ``plugin.py`` read conda's state and
hand plain values (records, argument lists, paths) to these functions, and
turn ``GateRefused`` into conda's ``CondaVerificationError``. Every function
fails closed: anything it cannot prove raises ``GateRefused``.

The gate protocol (``conda-guard gate``, version 1)
----------------------------------------------------
argv is exactly ``[BIN, "gate"]``; the request is one JSON object on stdin
(package URLs carry credentials, so never on the command line)::

    {"version": 1, "command": "install", "dry_run": false,
     "pkgs_dirs": ["/opt/conda/pkgs", ...],
     "records": [{"url", "fn", "name", "version", "build", "subdir",
                  "sha256", "md5", "size", "channel"}, ...]}

and the answer one JSON object on stdout::

    {"version": 1, "command": "gate", "status": "ok" | "fail" | "error",
     "dry_run": bool, "indexes": [{"path", "verdict", "reason",
                                   "key": str | null, ...}],  # key: what signed it
     "packages": [{"fn", "url", "verdict", "reason", "placed": str | null,
                   "cleaned": [str, ...],
                   "unsigned_channel": str}],         # UNVERIFIED only
     "message": str}                                  # status "error" only

with exit status 0 (every package VALID or UNVERIFIED), 1 (a refusal) or 2
(an error). UNVERIFIED is the gate's word for a package of a channel that the
local policy allows unsigned ("signatures: none"): nothing of it was
authenticated, but it was hashed against its index record, checked for its
identity and placed like a signed one; "unsigned_channel" names the policy
rule (its match, e.g. conda-forge) and the index of such a channel is
UNVERIFIED too. The plugin accepts only exit 0, status "ok", the same
dry_run, exactly one package per requested file name, each VALID without
"unsigned_channel" or UNVERIFIED with a non-empty "unsigned_channel" and
reason (and then at least one UNVERIFIED index), every index VALID or
UNVERIFIED, and (outside a dry run) an absolute "placed" folder for each.
Everything else refuses. The plugin never decides UNVERIFIED itself; it
prints a warning for each such package, even under --quiet.
In a dry run it says, per index, what the gate established: signed (VALID
with the key that signed it), not signed (VALID without a key: accepted
unsigned, its records not authenticated) or UNVERIFIED; a package's index is
the directory of its "url" plus /repodata.json.
"cleaned" lists, per package, the folders (full paths, in any of
pkgs_dirs) that claimed it and were removed before it was placed (planted
siblings, leftovers); empty when none, a list of absolute paths or the
answer refuses. The plugin prints one line for each (--quiet silences them:
the folders are already gone, nothing is left to decide).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

PROTOCOL_VERSION = 1
GATE_TIMEOUT_SECONDS = 3600.0
MAX_GATE_OUTPUT = 64 * 1024 * 1024
MAX_EXPLICIT_FILE = 16 * 1024 * 1024
EXPLICIT_MARKER = "@EXPLICIT"
PACKAGE_EXTENSIONS = (".tar.bz2", ".conda")
GUARD_BIN = "conda-guard"
SIGN_BIN = "conda-sign"

# conda/misc.py url_pat: [<dir>/]<fn>[#<md5> | #<sha256> | #sha256:<sha256>]
EXPLICIT_URL_PATTERN = re.compile(
    r"(?:(?P<url_p>.+)(?:[/\\]))?"
    r"(?P<fn>[^/\\#]+(?:\.tar\.bz2|\.conda))"
    r"(?:#("
    r"(?P<md5>[0-9a-f]{32})"
    r"|((sha256:)?(?P<sha256>[0-9a-f]{64}))"
    r"))?$"
)


class GateRefused(Exception):
    """The gate, or the plugin's check around it, refuses the operation."""


@dataclass(frozen=True)
class Unverified:
    """A package the gate placed without authenticating it, because the
    policy allows its channel unsigned."""

    fn: str
    channel: str  # the policy rule that allows it (its match)
    reason: str


@dataclass(frozen=True)
class IndexNote:
    """One index as the gate answered it: its (redacted) path, verdict, the
    key that signed it (None: nothing signed it) and the gate's reason."""

    path: str
    verdict: str
    key: Optional[str]
    reason: str

    @property
    def signed(self) -> bool:
        """Authenticated by a key: VALID and naming the key that signed it.
        A VALID index without a key is one the policy accepted unsigned."""
        return self.verdict == "VALID" and bool(self.key)

    def established(self) -> str:
        """What the gate established about this index's records, in words
        that never claim a signature the gate did not check."""
        if self.signed:
            return f"index signed by {self.key} and verified: its records are authenticated"
        if self.verdict == "VALID":
            return "index not signed: its records are not authenticated"
        if self.verdict == "UNVERIFIED":
            return "index not authenticated: the policy allows this channel unsigned"
        return f"{self.verdict}: {self.reason}"


@dataclass(frozen=True)
class GateAnswer:
    """What a clean gate answer says: the placed folder of every requested
    file name (None in a dry run), which of them are UNVERIFIED, every index
    and, per file name, the path of the index its record came from (None
    when the answer names no such index)."""

    placed: Dict[str, Optional[str]]
    unverified: List[Unverified]
    indexes: List[IndexNote] = field(default_factory=list)
    index_of: Dict[str, Optional[str]] = field(default_factory=dict)
    cleaned: Dict[str, List[str]] = field(default_factory=dict)  # fn -> folders removed, when any

    def dry_run_lines(self) -> List[str]:
        """What a dry run established, one line per index, then a count by
        what authenticated the records. Nothing was downloaded, so no
        package's signature or contents were checked: the lines say so."""
        lines = [f"dry run: {i.path}: {i.established()}" for i in self.indexes]
        by_path = {i.path: i for i in self.indexes}
        unverified = {u.fn for u in self.unverified}
        signed = unsigned = 0
        for fn in self.placed:
            if fn in unverified:
                continue
            index = by_path.get(self.index_of.get(fn) or "")
            if index is not None and index.signed:
                signed += 1
            else:
                unsigned += 1
        parts = []
        if signed:
            parts.append(f"{signed} from signed indexes (records authenticated)")
        if unsigned:
            parts.append(f"{unsigned} not authenticated (no signed index vouches for "
                         f"{'it' if unsigned == 1 else 'them'})")
        if self.unverified:
            channels = sorted({u.channel for u in self.unverified})
            parts.append(f"{len(self.unverified)} UNVERIFIED (policy allows unsigned "
                         f"channel{'s' if len(channels) != 1 else ''} {', '.join(channels)})")
        n = len(self.placed)
        lines.append(f"dry run: {n} package record{'s' if n != 1 else ''} found: {'; '.join(parts)}; "
                     "packages not downloaded, so no package signature or contents were checked "
                     "(each package's own signature is checked only when installing)")
        return lines

    def warnings(self) -> List[str]:
        """One line per UNVERIFIED package, as the plugin prints them."""
        return [f"conda-guard: WARNING: {u.fn} from {u.channel} is UNVERIFIED: {u.reason}"
                for u in self.unverified]

    def cleaned_lines(self) -> List[str]:
        """One line per folder the gate removed because it claimed a package
        of this run (conda could have linked it instead of the verified one)."""
        return [f"removed {folder} from the package cache: it claimed {_stem(fn)}, and conda could have "
                f"linked it instead of the verified folder"
                for fn, folders in self.cleaned.items() for folder in folders]

    def summary(self, done: str, noun: str = "package") -> str:
        """How many ``noun``s are ``done`` ("verified and placed"), then the
        UNVERIFIED count and the channels the policy allows unsigned."""
        valid = len(self.placed) - len(self.unverified)
        if not self.unverified:
            return f"{valid} {noun}{'s' if valid != 1 else ''} {done}"
        channels = sorted({u.channel for u in self.unverified})
        return (f"{valid} {done}, {len(self.unverified)} UNVERIFIED (policy allows unsigned "
                f"channel{'s' if len(channels) != 1 else ''} {', '.join(channels)})")


# ---------------------------------------------------------------------------
# Redaction: the plugin itself names packages by file name; where a URL must
# appear in a message it goes through here first.

_TOKEN = re.compile(r"/t/[A-Za-z0-9-]*")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def redact_url(url: str) -> str:
    """Drops ``user:pass@``, masks ``/t/TOKEN`` and cuts query and fragment."""
    url = url.split("#", 1)[0].split("?", 1)[0]
    url = _USERINFO.sub(r"\1", url)
    return _TOKEN.sub("/t/<TOKEN>", url, count=1)


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries ``user:pass@`` or an anaconda ``/t/TOKEN``."""
    bare = url.split("#", 1)[0].split("?", 1)[0]
    return redact_url(bare) != bare


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------
# Finding the binaries.


def is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_binary(name: str, *, configured_dir: Optional[str], python_prefix: str,
                path: Optional[str]) -> str:
    """Where ``name`` is: the configured folder if one is set (and only there),
    else ``python_prefix/bin`` (beside the Python that runs conda, so that a
    user-writable PATH entry cannot shadow it), else ``PATH``."""
    if configured_dir:
        candidate = os.path.join(configured_dir, name)
        if is_executable_file(candidate):
            return candidate
        raise GateRefused(f"{name} not found in {configured_dir} (plugins.condaguard_bin_dir)")
    candidate = os.path.join(python_prefix, "bin", name)
    if is_executable_file(candidate):
        return candidate
    found = shutil.which(name, path=path)
    if found:
        return found
    raise GateRefused(f"{name} not found beside conda's Python ({python_prefix}/bin) nor on PATH")


def exit_status(returncode: int) -> int:
    """A child's status as conda's exit code (0-255); a signal is 128+N."""
    if returncode < 0:
        return min(128 - returncode, 255)
    return min(returncode, 255)


# ---------------------------------------------------------------------------
# Records.


def record_from_prec(prec: Any) -> Dict[str, Any]:
    """The request record of a conda PackageRecord (attributes of
    conda-plugin.md section 3); ``str(prec.channel)`` is the subdir URL."""
    return {
        "url": prec.url,
        "fn": prec.fn,
        "name": prec.name,
        "version": prec.version,
        "build": prec.build,
        "subdir": prec.subdir,
        "sha256": prec.sha256,
        "md5": prec.md5,
        "size": prec.size,
        "channel": str(prec.channel),
    }


@dataclass(frozen=True)
class ExplicitEntry:
    """One package line of an explicit install, as conda reads it."""

    url: str  # exact URL conda matches against, without the fragment
    fn: str
    channel: str  # the URL's directory
    subdir: str
    name: str
    version: str
    build: str
    md5: Optional[str]
    sha256: Optional[str]

    def request_record(self) -> Dict[str, Any]:
        return {
            "url": self.url,
            "fn": self.fn,
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "subdir": self.subdir,
            "sha256": self.sha256,
            "md5": self.md5,
            "size": None,
            "channel": self.channel,
        }

    def checksums(self) -> Dict[str, str]:
        out = {}
        if self.md5:
            out["md5"] = self.md5
        if self.sha256:
            out["sha256"] = self.sha256
        return out


@dataclass(frozen=True)
class UrlFunctions:
    """conda's own URL helpers when running inside conda (the exact URL string
    matters: conda's cache lookup compares it), these stand-ins otherwise."""

    is_url: Callable[[str], bool]
    path_to_url: Callable[[str], str]
    expand: Callable[[str], str]
    join_url: Callable[..., str]


def _is_url(text: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def _path_to_url(path: str) -> str:
    if path.startswith("file:"):
        return path
    from pathlib import Path

    return Path(os.path.abspath(os.path.expanduser(path))).as_uri()


def _expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(os.path.expandvars(path)))


def _join_url(*parts: Optional[str]) -> str:
    start = "/" if not parts[0] else ""
    return start + "/".join(y for y in (x.strip("/") for x in parts if x) if y)


STDLIB_URL_FUNCTIONS = UrlFunctions(is_url=_is_url, path_to_url=_path_to_url, expand=_expand,
                                    join_url=_join_url)


def _stem(fn: str) -> str:
    """NAME-VERSION-BUILD of ``NAME-VERSION-BUILD.EXT`` (fn itself otherwise)."""
    for ext in PACKAGE_EXTENSIONS:
        if fn.endswith(ext):
            return fn[: -len(ext)]
    return fn


def split_fn(fn: str) -> Tuple[str, str, str]:
    """name, version, build of ``NAME-VERSION-BUILD.EXT``."""
    stem = _stem(fn)
    if stem == fn:
        raise GateRefused(f"{fn}: not a package file name")
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        raise GateRefused(f"{fn}: not NAME-VERSION-BUILD")
    return parts[0], parts[1], parts[2]


def explicit_entries(lines: Iterable[str], urls: UrlFunctions = STDLIB_URL_FUNCTIONS) -> List[ExplicitEntry]:
    """The packages of explicit lines (conda/misc.py _match_specs_from_explicit):
    blank lines, comments and the marker skipped, paths turned into file URLs."""
    entries = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or line == EXPLICIT_MARKER:
            continue
        spec = line if urls.is_url(line) else urls.path_to_url(urls.expand(line))
        m = EXPLICIT_URL_PATTERN.match(spec)
        if m is None:
            raise GateRefused(f"cannot parse explicit line: {redact_url(spec)}")
        url_p, fn = m.group("url_p"), m.group("fn")
        url = urls.join_url(url_p, fn)
        if has_credentials(url):
            # conda finds an explicit package in the cache by this exact URL,
            # so placing it would write the secret into urls.txt and
            # repodata_record.json; the gate writes only redacted URLs.
            raise GateRefused(f"{fn}: the explicit URL {redact_url(url)} carries credentials, which "
                              "conda-guard will not write into the package cache; install the "
                              "package by name from a channel configured with its token instead")
        directory = url[: -len(fn)].rstrip("/")
        name, version, build = split_fn(fn)
        entries.append(ExplicitEntry(url=url, fn=fn, channel=directory,
                                     subdir=directory.rsplit("/", 1)[-1], name=name,
                                     version=version, build=build, md5=m.group("md5"),
                                     sha256=m.group("sha256")))
    return entries


def is_package_argument(arg: str, urls: UrlFunctions = STDLIB_URL_FUNCTIONS) -> bool:
    """Whether a package argument of install/create/update is a tarball path or
    a package URL (what conda installs explicitly, without the solver)."""
    return EXPLICIT_URL_PATTERN.match(arg.strip()) is not None and (
        urls.is_url(arg) or arg.strip().split("#", 1)[0].endswith(PACKAGE_EXTENSIONS))


def read_user_file(path: str, cap: int) -> bytes:
    """At most ``cap`` bytes of the regular file ``path`` (a --file or -f
    argument), never following a link at its last component and never
    blocking on a FIFO or device; anything else refuses."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        hint = " (a symbolic link: pass the file it points to)" if os.path.islink(path) else ""
        raise GateRefused(f"cannot read {path}: {e.strerror or e}{hint}") from None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise GateRefused(f"cannot read {path}: not a regular file")
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(fd, cap + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise GateRefused(f"cannot read {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if size > cap:
        raise GateRefused(f"{path}: larger than {cap} bytes")
    return b"".join(chunks)


def read_explicit_file(path: str) -> Optional[List[str]]:
    """The lines of ``path`` if it is an explicit file (a line ``@EXPLICIT``),
    else None. Unreadable files refuse: conda would read something we did not."""
    data = read_user_file(path, MAX_EXPLICIT_FILE)
    lines = data.decode("utf-8", errors="replace").splitlines()
    if any(line.strip() == EXPLICIT_MARKER for line in lines):
        return lines
    return None


def explicit_lines_from_arguments(files: Any, packages: Any,
                                  urls: UrlFunctions = STDLIB_URL_FUNCTIONS) -> List[str]:
    """Every explicit package line of a command: the lines of each ``--file``
    that is explicit, and each package argument that is a path or URL."""
    if isinstance(files, str):  # conda env create/update: one file
        files = [files]
    lines: List[str] = []
    for path in files or ():
        if urls.is_url(path):
            raise GateRefused(f"--file {redact_url(path)}: a file given by URL cannot be checked "
                              "before conda reads it; download it and pass the local copy")
        explicit = read_explicit_file(path)
        if explicit is not None:
            lines.extend(explicit)
    lines.extend(p for p in (packages or ()) if isinstance(p, str) and is_package_argument(p, urls))
    return lines


MAX_ENV_FILE = 1024 * 1024
RESERVED_ENV_NAMES = ("base", "root")


def env_file_of(files: Any) -> Optional[str]:
    """The one environment file of a create without -n/-p (``--file`` is a
    list in ``conda create``, a string in 24.11's ``conda env create``), or
    None when none is given. Several refuse: conda refuses them too."""
    if isinstance(files, str):
        return files or None
    files = [f for f in (files or ()) if isinstance(f, str) and f]
    if len(files) > 1:
        raise GateRefused("several --file arguments and no -n/-p: name the environment with -n NAME or "
                          "-p PREFIX so that conda-guard can check the target before conda touches it")
    return files[0] if files else None


def read_env_file_target(path: str, yaml_load: Optional[Callable[[str], Any]]) -> Tuple[Optional[str],
                                                                                    Optional[str]]:
    """The ``name:`` and ``prefix:`` of the environment file ``path``, as
    conda's own YAML loader ``yaml_load`` reads them (None when absent).
    At most MAX_ENV_FILE bytes of a regular file, never following a link
    at its last component and never blocking on a FIFO; anything that
    cannot be read or parsed refuses."""
    if yaml_load is None:
        raise GateRefused(f"cannot read {path}: conda's YAML loader is not available; name the "
                          "environment with -n NAME or -p PREFIX")
    data = read_user_file(path, MAX_ENV_FILE)
    try:
        doc = yaml_load(data.decode("utf-8"))
    except Exception as e:
        raise GateRefused(f"cannot parse {path}: {type(e).__name__}: {one_line(e)}") from None

    def text(key: str) -> Optional[str]:
        value = doc.get(key) if isinstance(doc, dict) else None
        return value if isinstance(value, str) and value.strip() else None

    return text("name"), text("prefix")


def env_file_targets(path: str, name: Optional[str], prefix: Optional[str], *, envs_dirs: Sequence[str],
                     root_prefix: str, expand: Callable[[str], str] = os.path.expanduser) -> List[str]:
    """Every folder conda could take as the target of ``create -f PATH``
    without -n/-p: for ``name:``, that name in every envs dir (conda takes
    the first where it exists, else the first writable one: all of them are
    checked, to be safe), the root prefix for base/root; for ``prefix:``,
    that path. A file naming neither refuses."""
    if name is None and prefix is None:
        raise GateRefused(f"{path} names the environment neither with name: nor with prefix:; name it with "
                          "-n NAME or -p PREFIX so that conda-guard can check the target before conda "
                          "touches it")
    out: List[str] = []
    if name is not None:
        if name in RESERVED_ENV_NAMES:
            out.append(root_prefix)
        elif "/" in name or "\0" in name or name in (".", ".."):
            raise GateRefused(f"{path}: name: {one_line(name)!r} is not an environment name")
        else:
            out.extend(os.path.join(str(d), name) for d in envs_dirs)
    if prefix is not None:
        out.append(os.path.abspath(expand(prefix)))
    return out


def check_create_target(*, command: str, prefix: Optional[str], named: bool, clone: bool,
                        dry_run: bool, file_targets: Optional[Callable[[], Sequence[str]]] = None) -> None:
    """conda create deletes an existing environment before the solve, so no
    later refusal could keep it: create (and env create) over an existing,
    non-empty folder is refused up front. Without -n/-p the target comes
    from the environment file (``file_targets``: every folder it could be,
    see env_file_targets); with no file either, the target is not known and
    the create refuses."""
    if command not in ("create", "env_create"):
        return
    if clone:
        raise GateRefused("conda create --clone copies packages without a check: export the "
                          "environment (conda list --explicit --sha256 > FILE) and create from FILE")
    if named:
        targets: Sequence[str] = [prefix] if prefix else []
    elif dry_run:
        return
    elif file_targets is None:
        raise GateRefused("name the environment with -n NAME or -p PREFIX so that conda-guard can "
                          "check the target before conda touches it")
    else:
        targets = file_targets()
    for target in targets:
        if os.path.isdir(target):
            with os.scandir(target) as it:
                if any(True for _ in it):
                    raise GateRefused(f"{target} exists and is not empty; conda create would delete it "
                                      "before the packages are verified: remove it first, or use "
                                      "conda install to change it")


# ---------------------------------------------------------------------------
# The gate call.


def build_request(*, command: str, dry_run: bool, pkgs_dirs: Sequence[str],
                  records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "version": PROTOCOL_VERSION,
        "command": command,
        "dry_run": bool(dry_run),
        "pkgs_dirs": [str(d) for d in pkgs_dirs],
        "records": list(records),
    }


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _unsigned_channel(item: Dict[str, Any]) -> Optional[str]:
    """The policy rule of an UNVERIFIED package as the gate answered it, or
    None when the item is not a well-formed UNVERIFIED answer."""
    channel, reason = item.get("unsigned_channel"), item.get("reason")
    if item.get("verdict") != "UNVERIFIED" or not isinstance(channel, str) or not channel.strip() \
            or not isinstance(reason, str) or not reason.strip():
        return None
    return channel


def _accepted(kind: str, item: Any) -> bool:
    """VALID (a package without "unsigned_channel"), or UNVERIFIED as the gate
    gives it for a channel its policy allows unsigned."""
    if not isinstance(item, dict):
        return False
    if kind == "indexes":
        return item.get("verdict") in ("VALID", "UNVERIFIED")
    if item.get("verdict") == "VALID":
        return "unsigned_channel" not in item
    return _unsigned_channel(item) is not None


def _refusals(response: Dict[str, Any]) -> List[str]:
    lines = []
    for kind, name_key in (("indexes", "path"), ("packages", "fn")):
        items = response.get(kind)
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict) and not _accepted(kind, item):
                lines.append(f"{one_line(item.get(name_key, '?'))}  {one_line(item.get('verdict', '?'))}  "
                             f"{one_line(item.get('reason', ''))}")
    return lines


def check_response(request: Dict[str, Any], returncode: int, stdout: bytes) -> GateAnswer:
    """The placed folder of every requested file name and the UNVERIFIED
    ones, or GateRefused naming each refused package (fn, verdict, reason) or
    what was wrong."""
    try:
        response = json.loads(stdout.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise GateRefused(f"conda-guard gate (exit {returncode}) did not answer in JSON: {one_line(e)}") from None
    if not isinstance(response, dict) or response.get("version") != PROTOCOL_VERSION \
            or response.get("command") != "gate":
        raise GateRefused(f"conda-guard gate (exit {returncode}) answered something else than a "
                          f"version {PROTOCOL_VERSION} gate report")
    status = response.get("status")
    if returncode != 0 or status != "ok":
        lines = _refusals(response)
        if status == "error" and isinstance(response.get("message"), str):
            lines.append(one_line(response["message"]))
        head = f"conda-guard refused (exit {returncode}, status {one_line(status)})"
        raise GateRefused("\n".join([head] + lines))
    if response.get("dry_run") is not request["dry_run"]:
        raise GateRefused("conda-guard gate answered for another dry_run than asked")
    packages = response.get("packages")
    wanted = [r["fn"] for r in request["records"]]
    if not isinstance(packages, list) or len(packages) != len(wanted):
        raise GateRefused(f"conda-guard gate answered for {len(packages) if isinstance(packages, list) else 'no'} "
                          f"packages, {len(wanted)} were asked")
    refused = _refusals(response)
    if refused or not isinstance(response.get("indexes"), list):
        raise GateRefused("\n".join(["conda-guard refused (exit 0 but not every package VALID or "
                                      "UNVERIFIED by policy)"] + refused))
    placed: Dict[str, Optional[str]] = {}
    unverified: List[Unverified] = []
    cleaned: Dict[str, List[str]] = {}
    for item in packages:
        fn = item.get("fn")
        if not isinstance(fn, str) or fn not in wanted or fn in placed:
            raise GateRefused(f"conda-guard gate answered for {one_line(fn)}, which was not asked once")
        folder = item.get("placed")
        if not request["dry_run"] and not (isinstance(folder, str) and os.path.isabs(folder)):
            raise GateRefused(f"{fn}: conda-guard gate did not say where it placed the package")
        placed[fn] = folder
        removed = item.get("cleaned", [])
        if not isinstance(removed, list) or not all(isinstance(c, str) and os.path.isabs(c) for c in removed):
            raise GateRefused(f"{fn}: conda-guard gate answered a malformed \"cleaned\" list")
        if removed:
            cleaned[fn] = [one_line(c) for c in removed]
        channel = _unsigned_channel(item)
        if channel is not None:
            unverified.append(Unverified(fn=fn, channel=one_line(channel), reason=one_line(item["reason"])))
    if unverified and not any(i.get("verdict") == "UNVERIFIED" for i in response["indexes"]):
        raise GateRefused("conda-guard gate answered UNVERIFIED packages without an UNVERIFIED index")
    indexes = [IndexNote(path=one_line(i.get("path", "?")), verdict=one_line(i.get("verdict", "?")),
                         key=one_line(i["key"]) if isinstance(i.get("key"), str) and i["key"] else None,
                         reason=one_line(i.get("reason", "")))
               for i in response["indexes"]]
    index_of: Dict[str, Optional[str]] = {}
    for item in packages:
        url = item.get("url")
        index_of[item["fn"]] = (one_line(url.rsplit("/", 1)[0]) + "/repodata.json"
                                if isinstance(url, str) and "/" in url else None)
    return GateAnswer(placed=placed, unverified=unverified, indexes=indexes, index_of=index_of, cleaned=cleaned)


def run_gate(binary: str, request: Dict[str, Any], *,
             timeout: Optional[float] = None) -> GateAnswer:
    """Runs ``BINARY gate`` with the request on stdin (stderr is the user's)."""
    if timeout is None:
        timeout = GATE_TIMEOUT_SECONDS
    payload = json.dumps(request).encode("utf-8")
    try:
        proc = subprocess.Popen([binary, "gate"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                close_fds=True)
    except OSError as e:
        raise GateRefused(f"cannot run {binary}: {e.strerror or e}") from None
    try:
        stdout, _ = proc.communicate(input=payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise GateRefused(f"conda-guard gate did not answer within {timeout:g} s") from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if len(stdout) > MAX_GATE_OUTPUT:
        raise GateRefused("conda-guard gate answered more than the plugin reads")
    return check_response(request, proc.returncode, stdout)


# ---------------------------------------------------------------------------
# The self-check (conda-plugin.md section 4): after PackageCacheData.clear(),
# conda must neither fetch nor extract anything and must link the very folder
# conda-guard verified. ``make_actions`` passing alone is not enough: conda
# links any top-level folder claiming the package, a planted sibling included.


@dataclass(frozen=True)
class LinkCheck:
    fn: str
    placed: str
    fetch_ref: Any  # what conda hands ProgressiveFetchExtract (record or MatchSpec)
    link_ref: Callable[[], Any]  # what conda then hands get_entry_to_link


def _same_folder(actual: Any, placed: str) -> bool:
    return isinstance(actual, str) and os.path.samefile(actual, placed)


def self_check(checks: Sequence[LinkCheck], *, make_actions_for_record: Callable[[Any], Any],
               get_entry_to_link: Callable[[Any], Any]) -> None:
    failures = []
    for c in checks:
        try:
            actions = tuple(make_actions_for_record(c.fetch_ref))
            if actions != (None, None):
                failures.append(f"{c.fn}: conda would still fetch or extract it")
                continue
            entry = get_entry_to_link(c.link_ref())
            folder = getattr(entry, "extracted_package_dir", None)
            if not _same_folder(folder, c.placed):
                failures.append(f"{c.fn}: conda would link {one_line(folder)}, not the verified {c.placed}")
        except Exception as e:  # conda's own lookups failing is a failed check
            failures.append(f"{c.fn}: cannot check what conda would link: {type(e).__name__}: {one_line(e)}")
    if failures:
        raise GateRefused("\n".join(["conda-guard: conda would not install what was verified"] + failures))
