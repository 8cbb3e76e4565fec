"""Shared pieces of the benchmarks that serve generated packages from a local
nginx (bench/gate.py, bench/plugin_install.py): running and timing children,
the nginx server, and the signed channel of generated packages."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def run(cmd, env=None, **kw):
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, **kw)
    if p.returncode != 0:
        sys.exit("benchmark command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd[:6]), p.stderr.decode()))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(tmp, root):
    """nginx serving root on 127.0.0.1 (ephemeral port); returns (process, port)."""
    port = free_port()
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(prefix, "logs"))
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off; master_process off; worker_processes 1; pid %(p)s/nginx.pid;
error_log stderr error;
events { worker_connections 256; }
http { access_log off; sendfile on; keepalive_requests 100000;
  client_body_temp_path %(p)s/b; proxy_temp_path %(p)s/x; fastcgi_temp_path %(p)s/f;
  uwsgi_temp_path %(p)s/u; scgi_temp_path %(p)s/s;
  types { application/octet-stream conda bz2; application/json json; }
  server { listen 127.0.0.1:%(port)d; root %(root)s; } }
""" % {"p": prefix, "port": port, "root": root})
    proc = subprocess.Popen(["nginx", "-p", prefix, "-c", conf], stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("nginx did not start: " + proc.stderr.read().decode())


def timed_child(cmd, env=None, cwd=None):
    """Runs cmd; returns (seconds, rusage of that child)."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe nobody reads while it runs
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        t = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit("benchmark command failed: %s\n%s" % (" ".join(cmd[:6]), err.read().decode(errors="replace")))
    return t, ru


def drop_to(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def make_signed_channel(sign, guard, make_packages, channel, env, packages, total_mb, no_depends=False):
    """A key `bench` (in env's CONDA_KEYS_DIR), `packages` generated packages
    of about total_mb MB in all in channel/noarch, indexed and signed (index
    and each package) by conda-guard as channel id `bench`. Returns the
    package file names, sorted, and their total size in bytes."""
    run([sign, "--keygen", "bench"], env)
    print("making %d packages of about %d MB in all..." % (packages, total_mb))
    run([os.path.abspath(make_packages)] + (["--no-depends"] if no_depends else [])
        + [channel, str(packages), str(total_mb)])
    run([guard, "index", channel, "--sign", "bench", "--channel-id", "bench", "--sign-packages"], env)
    noarch = os.path.join(channel, "noarch")
    files = sorted(f for f in os.listdir(noarch) if f.endswith((".conda", ".tar.bz2")))
    for f in files:  # every side reads the served files from the page cache
        with open(os.path.join(noarch, f), "rb") as fo:
            while fo.read(1 << 20):
                pass
    return files, sum(os.path.getsize(os.path.join(noarch, f)) for f in files)
