#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan, and runs each for
# SECONDS (default 60) on a corpus under fuzz/corpus/NAME (created as needed).
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
command -v clang++ >/dev/null || { $SUDO apt-get update; $SUDO apt-get install -y --no-install-recommends clang; }
if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++ meson setup build-fuzz -Dfuzzing=true -Dtests=false -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-fuzz
for name in sigfile keys package repodata; do
  mkdir -p "fuzz/corpus/$name"
  echo "== fuzz_$name for ${seconds}s"
  ./build-fuzz/fuzz/fuzz_$name -max_total_time="$seconds" -max_len=65536 -timeout=10 "fuzz/corpus/$name"
done
