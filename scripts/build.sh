#!/usr/bin/env bash
# Configures (once) and builds into ./build. CI builds with -Dwerror=true.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=()
[ "${CI:-}" = "true" ] && extra+=(-Dwerror=true)
if [ ! -f build/build.ninja ]; then
  meson setup build "${extra[@]}"
fi
ninja -C build
