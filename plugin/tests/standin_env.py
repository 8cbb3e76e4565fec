"""End-to-end fixtures: a throwaway conda installation running the stand-in
conda (standin_conda/) with the conda-guard plugin installed by the real
`conda-guard plugin install`, signed channels made by the real conda-sign and
conda-guard, served over HTTP on 127.0.0.1 (ephemeral port), and tree
snapshots. Every child process runs under a timeout."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import zipfile
from typing import Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "standin_conda")
GUARD = os.environ.get("CONDA_GUARD_EXE", "")
SIGN = os.environ.get("CONDA_SIGN_EXE", "")
TIMEOUT = 60
SYSTEM_PYTHON = "/usr/bin/python3"


def available() -> bool:
    if not (GUARD and SIGN and os.path.exists(GUARD) and os.path.exists(SIGN)):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import pluggy"], capture_output=True, timeout=TIMEOUT)
    return probe.returncode == 0


def run(argv: List[str], env: Dict[str, str], cwd: Optional[str] = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=TIMEOUT)


# ---------------------------------------------------------------------------
# Packages: info/index.json + info/paths.json + payload (conda-formats §2).

def _tar_bytes(members: Dict[str, bytes], compression: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compression) as t:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(members[name]))
    return buf.getvalue()


def package_members(name: str, version: str, build: str, files: Dict[str, bytes], depends=(),
                    subdir: str = "noarch") -> Dict[str, bytes]:
    index = {"name": name, "version": version, "build": build, "build_number": 0,
             "depends": list(depends), "subdir": subdir, "timestamp": 1700000000000}
    paths = {"paths_version": 1, "paths": [
        {"_path": p, "path_type": "hardlink", "sha256": hashlib.sha256(d).hexdigest(), "size_in_bytes": len(d)}
        for p, d in sorted(files.items())]}
    members = dict(files)
    members["info/index.json"] = json.dumps(index).encode()
    members["info/paths.json"] = json.dumps(paths).encode()
    return members


def build_package(subdir_dir: str, name: str, version: str = "1.0", build: str = "0",
                  files: Optional[Dict[str, bytes]] = None, depends=(), fmt: str = ".tar.bz2") -> str:
    """Writes SUBDIR_DIR/NAME-VERSION-BUILD.FMT and returns its path."""
    os.makedirs(subdir_dir, exist_ok=True)
    files = files if files is not None else {f"share/{name}.txt": f"{name} {version} signed\n".encode()}
    members = package_members(name, version, build, files, depends, os.path.basename(subdir_dir))
    stem = f"{name}-{version}-{build}"
    path = os.path.join(subdir_dir, stem + fmt)
    if fmt == ".tar.bz2":
        with open(path, "wb") as f:
            f.write(_tar_bytes(members, "bz2"))
        return path
    info = {k: v for k, v in members.items() if k.startswith("info/")}
    pkg = {k: v for k, v in members.items() if not k.startswith("info/")}

    def zst(data: bytes) -> bytes:
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True,
                              timeout=TIMEOUT).stdout

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        z.writestr(f"pkg-{stem}.tar.zst", zst(_tar_bytes(pkg)))
        z.writestr(f"info-{stem}.tar.zst", zst(_tar_bytes(info)))
    return path


# ---------------------------------------------------------------------------
# The server: a directory over HTTP on 127.0.0.1, recording each request.

class Server:
    def __init__(self, root: str) -> None:
        self.root = root
        self.requests: List[Dict[str, str]] = []
        # (path, user_agent) -> bytes to serve instead, or None for the file
        self.override: Optional[Callable[[str, str], Optional[bytes]]] = None
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=server.root, **kw)

            def do_GET(self):
                agent = self.headers.get("User-Agent", "")
                server.requests.append({"path": self.path, "agent": agent})
                body = server.override(self.path, agent) if server.override else None
                if body is None:
                    return super().do_GET()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> List[str]:
        return [r["path"] for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------
# The conda installation.

class CondaInstall:
    """A venv whose bin/conda runs the stand-in with the plugin installed."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.venv = os.path.join(root, "venv")
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", "--system-site-packages", self.venv],
                       check=True, timeout=TIMEOUT)
        python = os.path.join(self.venv, "bin", "python")
        purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True, timeout=TIMEOUT).stdout.strip()
        with open(os.path.join(purelib, "standin_conda.pth"), "w") as f:
            f.write(STANDIN + "\n")
        self.conda = os.path.join(self.venv, "bin", "conda")
        with open(self.conda, "w") as f:
            f.write(f"#!{python}\nimport sys\nfrom conda.cli.main import main\nsys.exit(main())\n")
        os.chmod(self.conda, stat.S_IRWXU)

    def install_plugin(self, env: Dict[str, str]) -> subprocess.CompletedProcess:
        return run([GUARD, "plugin", "install", "--conda", self.conda], env)


class Workspace:
    """HOME, keys, state, package cache, envs under one temporary folder, and
    the environment variables of every run."""

    def __init__(self, root: str, conda: CondaInstall) -> None:
        self.root = root
        self.install = conda
        self.home = os.path.join(root, "home")
        self.keys = os.path.join(root, "keys")
        self.pkgs = os.path.join(root, "pkgs")
        self.envs = os.path.join(root, "envs")
        os.makedirs(os.path.join(self.home, ".conda"), exist_ok=True)
        self.bin_dir = os.path.dirname(os.path.abspath(GUARD))
        self.env = {
            "HOME": self.home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
            "CONDA_KEYS_DIR": self.keys, "CONDA_GUARD_STATE_DIR": os.path.join(root, "state"),
            "CONDARC": "", "CONDA_PKGS_DIRS": self.pkgs, "CONDA_ENVS_DIRS": self.envs,
            "CONDA_PLUGINS_CONDAGUARD_BIN_DIR": self.bin_dir, "PYTHONDONTWRITEBYTECODE": "1",
            "CONDA_REMOTE_MAX_RETRIES": "0", "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
        }

    def sign(self, *args: str) -> subprocess.CompletedProcess:
        return run([SIGN, *args], self.env)

    def guard(self, *args: str) -> subprocess.CompletedProcess:
        return run([GUARD, *args], self.env)

    def keygen(self, name: str) -> None:
        r = self.sign("--keygen", name)
        assert r.returncode == 0, r.stderr

    def policy(self, text: str) -> None:
        path = os.path.join(self.home, ".conda", "guard.yaml")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)

    def conda(self, *args: str, env: Optional[Dict[str, str]] = None, stdin: str = "") -> subprocess.CompletedProcess:
        return run([self.install.conda, *args], dict(self.env, **(env or {})), cwd=self.root, stdin=stdin)


def snapshot(path: str) -> Dict[str, object]:
    """Every entry under path: kind, mode, content hash or link target."""
    out: Dict[str, object] = {}
    if not os.path.lexists(path):
        return {"": "absent"}
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(top, name)
            rel = os.path.relpath(p, path)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(f.read()).hexdigest())
    return out


def rmtree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
