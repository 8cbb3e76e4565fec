#!/usr/bin/python3
"""Compatibility of conda-sign with the old `conda sign` algorithm, both ways.

The old tool is gone; its algorithm lives on in pycryptodome (Debian's
python3-pycryptodome): PKCS1_PSS with SHA-256 (MGF1-SHA-256, salt = 32) over the
file's SHA-256, keys read by RSA.importKey, `.sig` = "NAME base64\\n".

1. conda-sign --keygen and conda-sign FILE: pycryptodome loads both key files and
   the old verifier (a port of conda 4.2's conda/signature.py) says VALID; a
   changed byte makes it say INVALID.
2. A key pair and signatures written the old way (PyCrypto's exportKey layout,
   PKCS1_PSS signing, conda-build's .sig line): conda-sign --verify says VALID,
   and INVALID after a change; conda-sign signs with the old private key too.

Usage: pycryptodome_compat.py PATH/TO/conda-sign
"""

import base64
import os
import subprocess
import sys
import tempfile

try:
    from Cryptodome.PublicKey import RSA
    from Cryptodome.Signature import PKCS1_PSS
except ImportError:  # pip's pycryptodome uses the PyCrypto namespace
    from Crypto.PublicKey import RSA
    from Crypto.Signature import PKCS1_PSS

CONDA_SIGN = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


# The old verifier, ported once: bench/old_verify.py (conda 4.2's verify()).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from old_verify import hash_file, verify as old_verify  # noqa: E402


def conda_sign(*args):
    return subprocess.run([CONDA_SIGN, *args], capture_output=True, text=True,
                          env=dict(os.environ, CONDA_KEYS_DIR=""))


def files_in(d, n):
    paths = []
    for i, size in enumerate([0, 1, 262143, 262144, 262145, 1000003][:n]):
        p = os.path.join(d, "pkg-%d-1.0-0.tar.bz2" % i)
        with open(p, "wb") as fo:
            fo.write(bytes((j * 131 + i) & 0xFF for j in range(size)))
        paths.append(p)
    return paths


with tempfile.TemporaryDirectory() as tmp:
    # 1. conda-sign writes, the old algorithm reads.
    keys = os.path.join(tmp, "keys")
    for bits in ("2048", "3072"):
        name = "new%s" % bits
        r = conda_sign("--keys-dir", keys, "--keygen", name, "--size", bits)
        check(r.returncode == 0, "conda-sign --keygen %s --size %s" % (name, bits))
        priv = RSA.importKey(open(os.path.join(keys, name)).read())
        pub = RSA.importKey(open(os.path.join(keys, name + ".pub")).read())
        check(priv.has_private() and priv.size_in_bits() == int(bits), "old loader reads %s (private)" % name)
        check(not pub.has_private() and pub.n == priv.n and pub.e == 65537, "old loader reads %s.pub" % name)
        check(open(os.path.join(keys, name)).read() == priv.export_key("PEM").decode() + "\n",
              "%s is byte-identical to PyCrypto's exportKey() + newline for the same key" % name)
        check(open(os.path.join(keys, name + ".pub")).read() ==
              pub.export_key("PEM").decode() + "\n",
              "%s.pub is byte-identical to publickey().exportKey() + newline" % name)

        d = os.path.join(tmp, "out" + bits)
        os.makedirs(d)
        paths = files_in(d, 6)
        r = conda_sign("--keys-dir", keys, "-i", name, *paths)
        check(r.returncode == 0, "conda-sign -i %s signs %d files" % (name, len(paths)))
        for p in paths:
            line = open(p + ".sig", "rb").read()
            check(line.startswith(name.encode() + b" ") and line.endswith(b"\n") and line.count(b"\n") == 1,
                  "%s.sig is one line 'NAME BASE64\\n'" % os.path.basename(p))
            check(old_verify(p, keys), "old verifier: VALID for %s" % os.path.basename(p))
        with open(paths[-1], "r+b") as fo:
            fo.seek(1000)
            b = fo.read(1)
            fo.seek(1000)
            fo.write(bytes([b[0] ^ 1]))
        check(not old_verify(paths[-1], keys), "old verifier: INVALID after one changed byte")

    # 2. The old tool writes, conda-sign reads.
    old_keys = os.path.join(tmp, "oldkeys")
    os.makedirs(old_keys, mode=0o700)
    key = RSA.generate(2048)
    with open(os.path.join(old_keys, "OldKey"), "wb") as fo:
        fo.write(key.export_key() + b"\n")
    os.chmod(os.path.join(old_keys, "OldKey"), 0o600)
    with open(os.path.join(old_keys, "OldKey.pub"), "wb") as fo:
        fo.write(key.publickey().export_key() + b"\n")
    d = os.path.join(tmp, "legacy")
    os.makedirs(d)
    paths = files_in(d, 6)
    for p in paths:
        sig = PKCS1_PSS.new(key).sign(hash_file(p))
        with open(p + ".sig", "w") as fo:  # conda-build: text mode, 'NAME ' + b64 + '\n'
            fo.write("OldKey ")
            fo.write(base64.b64encode(sig).decode())
            fo.write("\n")
    r = conda_sign("--keys-dir", old_keys, "--verify", *paths)
    check(r.returncode == 0 and r.stdout.count(" VALID ") == len(paths),
          "conda-sign --verify: VALID for %d files signed the old way\n%s%s" % (len(paths), r.stdout, r.stderr))
    with open(paths[2], "ab") as fo:
        fo.write(b"\0")
    r = conda_sign("--keys-dir", old_keys, "--verify", paths[2])
    check(r.returncode == 1 and " INVALID " in r.stdout, "conda-sign --verify: INVALID after appending a byte")

    # conda-sign signs with a private key the old keygen wrote; the old verifier agrees.
    os.makedirs(os.path.join(tmp, "fresh"))
    fresh = files_in(os.path.join(tmp, "fresh"), 3)
    r = conda_sign("--keys-dir", old_keys, *fresh)
    check(r.returncode == 0, "conda-sign signs with the old tool's private key\n" + r.stderr)
    for p in fresh:
        check(old_verify(p, old_keys), "old verifier: VALID for %s signed by conda-sign with OldKey"
              % os.path.basename(p))

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all compatibility checks passed")
