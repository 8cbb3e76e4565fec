#!/usr/bin/python3
"""The old `conda sign --verify`, reimplemented: conda 4.2's conda/signature.py
verify() with pycryptodome standing in for PyCrypto 2.6. Reference for
bench/run.py. Usage: old_verify.py KEYS_DIR FILE..."""

import base64
import os
import sys

try:
    from Cryptodome.Hash import SHA256
    from Cryptodome.PublicKey import RSA
    from Cryptodome.Signature import PKCS1_PSS
except ImportError:
    from Crypto.Hash import SHA256
    from Crypto.PublicKey import RSA
    from Crypto.Signature import PKCS1_PSS


def hash_file(path):
    h = SHA256.new()
    with open(path, "rb") as fi:
        while True:
            chunk = fi.read(262144)
            if not chunk:
                break
            h.update(chunk)
    return h


def verify(path, keys_dir):
    sig_path = path + ".sig"
    if not os.path.isfile(sig_path):
        raise RuntimeError("signature does not exist: " + sig_path)
    with open(sig_path) as fi:
        key_name, sig = fi.read().split()
    key_path = os.path.join(keys_dir, key_name + ".pub")
    if not os.path.isfile(key_path):
        raise RuntimeError("public key does not exist: " + key_path)
    with open(key_path) as fi:
        key = RSA.importKey(fi.read())
    return PKCS1_PSS.new(key).verify(hash_file(path), base64.b64decode(sig))


def main():
    keys_dir, paths = sys.argv[1], sys.argv[2:]
    bad = 0
    for path in paths:
        ok = verify(path, keys_dir)
        bad += not ok
        print("%-40s %s" % (path, "VALID" if ok else "INVALID"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
