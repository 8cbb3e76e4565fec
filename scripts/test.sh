#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
status=0
meson test -C build --print-errorlogs || status=$?
python3 scripts/summary.py build/meson-logs/testlog.txt
exit "$status"
