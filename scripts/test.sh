#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs every test, then
# runs the GoogleTest suites again in an AddressSanitizer + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
status=0
meson test -C build --print-errorlogs || status=$?

if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
fi
# A failed sanitizer build still ends with the summary line (and status 1).
rm -f build-asan/meson-logs/testlog.txt
if ninja -C build-asan; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs || status=$?
else
  status=1
fi

python3 scripts/summary.py build/meson-logs/testlog.txt build-asan/meson-logs/testlog.txt
exit "$status"
