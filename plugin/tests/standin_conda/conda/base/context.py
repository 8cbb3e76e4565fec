"""conda.base.context: the settings the stand-in and the plugin read
(conda-formats §7, §3.1; conda-plugin.md §1, §5, §6).

SIMPLIFIED: condarc files are read from sys.prefix/{.condarc,condarc},
~/.condarc, ~/.conda/{.condarc,condarc} and $CONDARC (later wins), in a
YAML subset (scalars, flow and block lists, one-level maps); only the keys
below exist; channels are URLs or paths (no channel_alias / names)."""

import os
import sys
from types import SimpleNamespace


def _scalar(text: str):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    return text


def read_condarc(path: str) -> dict:
    out: dict = {}
    key = None
    with open(path) as f:
        for raw in f:
            line = raw.split(" #", 1)[0].rstrip()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if value.startswith("[") and value.endswith("]"):
                    out[key] = [_scalar(v) for v in value[1:-1].split(",") if v.strip()]
                elif value:
                    out[key] = _scalar(value)
                else:
                    out[key] = None
                continue
            item = line.strip()
            if item.startswith("- "):
                out[key] = (out.get(key) or []) + [_scalar(item[2:])]
            else:
                sub, _, value = item.partition(":")
                if not isinstance(out.get(key), dict):
                    out[key] = {}
                out[key][sub.strip()] = _scalar(value)
    return out


def _condarc_paths() -> list:
    home = os.path.expanduser("~")
    paths = [os.path.join(sys.prefix, ".condarc"), os.path.join(sys.prefix, "condarc"),
             os.path.join(home, ".config", "conda", ".condarc"),
             os.path.join(home, ".conda", ".condarc"), os.path.join(home, ".conda", "condarc"),
             os.path.join(home, ".condarc")]
    rc = os.environ.get("CONDARC", "")
    # §7.1: a file is used only if it is named .condarc / condarc or ends in .yml/.yaml
    if rc and (os.path.basename(rc) in (".condarc", "condarc") or rc.endswith((".yml", ".yaml"))):
        paths.append(rc)
    return paths


def _true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1"))


class Context:
    """As in conda, ``context.__init__(argparse_args=...)`` (re)reads the
    condarc search path and the arguments; ``raw_data`` maps each source
    (a condarc path, "envvars") to the keys it sets."""

    def __init__(self, search_path=None, argparse_args=None) -> None:
        self._rc: dict = {}
        self.raw_data: dict = {}
        for path in _condarc_paths() if search_path is None else search_path:
            if os.path.isfile(path):
                try:
                    rc = read_condarc(path)
                except (OSError, ValueError) as e:
                    print(f"WARNING: cannot read {path}: {e}", file=sys.stderr)
                    continue
                self._rc.update(rc)
                self.raw_data[path] = dict(rc)
        self.raw_data["envvars"] = {k[len("CONDA_"):].lower(): v for k, v in os.environ.items()
                                    if k.startswith("CONDA_")}
        self._argparse_args = argparse_args if argparse_args is not None else SimpleNamespace()

    def __init_context__(self, argparse_args=None) -> None:
        self.__init__(argparse_args=argparse_args)

    __call__ = __init_context__

    def _arg(self, name, default=None):
        return getattr(self._argparse_args, name, default)

    # -- conda-plugin.md §1: --no-plugins, CONDA_NO_PLUGINS, condarc no_plugins
    @property
    def no_plugins(self) -> bool:
        if self._arg("no_plugins"):
            return True
        env = os.environ.get("CONDA_NO_PLUGINS", "")
        if env:
            return _true(env)
        return _true(self._rc.get("no_plugins", False))

    @property
    def plugin_manager(self):
        from ..plugins.manager import get_plugin_manager

        return get_plugin_manager()

    @property
    def plugins(self):
        """Settings declared by conda_settings: CONDA_PLUGINS_NAME, else
        condarc plugins: {NAME: value}, else the default (§6)."""
        values = {}
        rc = self._rc.get("plugins") if isinstance(self._rc.get("plugins"), dict) else {}
        for name, setting in self.plugin_manager.get_settings().items():
            env = os.environ.get(f"CONDA_PLUGINS_{name.upper()}")
            values[name] = env if env is not None else rc.get(name, setting.parameter.default)
        return SimpleNamespace(**values)

    @property
    def json(self) -> bool:
        return bool(self._arg("json", False))

    @property
    def quiet(self) -> bool:
        return bool(self._arg("quiet", False))

    @property
    def dry_run(self) -> bool:
        return bool(self._arg("dry_run", False))

    @property
    def always_yes(self) -> bool:
        return bool(self._arg("yes", False)) or self.json

    @property
    def root_prefix(self) -> str:
        return sys.prefix

    @property
    def subdir(self) -> str:
        return "linux-64"  # SIMPLIFIED: the native subdir of the test machines

    @property
    def subdirs(self) -> tuple:
        return (self.subdir, "noarch")

    # -- conda-formats §3.1
    @property
    def pkgs_dirs(self) -> tuple:
        env = os.environ.get("CONDA_PKGS_DIRS", "")
        if env:
            dirs = [d for d in env.split(",") if d]
        elif self._rc.get("pkgs_dirs"):
            dirs = list(self._rc["pkgs_dirs"])
        else:
            dirs = [os.path.join(self.root_prefix, "pkgs"), os.path.join("~", ".conda", "pkgs")]
        out = []
        for d in dirs:
            d = os.path.abspath(os.path.expanduser(os.path.expandvars(d)))
            if d not in out:
                out.append(d)
        return tuple(out)

    @property
    def envs_dirs(self) -> tuple:
        env = os.environ.get("CONDA_ENVS_DIRS", "")
        dirs = [d for d in env.split(os.pathsep) if d] if env else list(self._rc.get("envs_dirs") or [])
        dirs += [os.path.join(self.root_prefix, "envs"), os.path.join("~", ".conda", "envs")]
        return tuple(os.path.abspath(os.path.expanduser(d)) for d in dirs)

    @property
    def target_prefix(self) -> str:
        prefix = self._arg("prefix")
        if prefix:
            return os.path.abspath(os.path.expanduser(prefix))
        name = self._arg("name")
        if name:
            if name == "base":
                return self.root_prefix
            for d in self.envs_dirs:
                if os.path.isdir(os.path.join(d, name)):
                    return os.path.join(d, name)
            for d in self.envs_dirs:  # the first one that can be written
                probe = d
                while not os.path.exists(probe):
                    probe = os.path.dirname(probe)
                if os.access(probe, os.W_OK):
                    return os.path.join(d, name)
            return os.path.join(self.envs_dirs[0], name)
        return os.environ.get("CONDA_PREFIX") or self.root_prefix

    # -- conda-formats §7.2: -c first; --override-channels uses only -c
    @property
    def channels(self) -> tuple:
        given = list(self._arg("channel") or [])
        if self._arg("override_channels"):
            return tuple(given)
        rc = self._rc.get("channels") or []
        env = [c for c in os.environ.get("CONDA_CHANNELS", "").split(",") if c]
        out = []
        for c in given + env + list(rc):
            if c not in out:
                out.append(c)
        return tuple(out)

    @property
    def safety_checks(self) -> str:
        return str(os.environ.get("CONDA_SAFETY_CHECKS") or self._rc.get("safety_checks") or "warn")


context = Context()
