#!/usr/bin/env python3
"""Prints one closing line, 'N passed, N failed, N skipped', counting the
individual cases in meson's test logs: GoogleTest cases and the checks of the
Python compatibility test. A log that does not exist (its build failed)
counts nothing. Usage: summary.py TESTLOG..."""

import os
import re
import sys

text = "".join(open(p, errors="replace").read() for p in sys.argv[1:] if os.path.exists(p))
# GoogleTest prints each result once with its time, e.g. "[       OK ] A.B (3 ms)".
passed = len(re.findall(r"^\[       OK \] \S+ \(\d+ ms\)$", text, re.M))
failed = len(re.findall(r"^\[  FAILED  \] \S+ \(\d+ ms\)$", text, re.M))
skipped = len(re.findall(r"^\[  SKIPPED \] \S+ \(\d+ ms\)$", text, re.M))
passed += len(re.findall(r"^ok   ", text, re.M))
failed += len(re.findall(r"^FAIL ", text, re.M))
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
