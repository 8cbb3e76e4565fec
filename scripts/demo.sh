#!/usr/bin/env bash
# Installs what is needed, builds, and shows the main job on its own data:
# a temporary keys directory, two packages built here, keygen, sign, verify,
# then a tampered copy and a stripped signature refused with their verdicts.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
bash scripts/install-deps.sh >"$log" 2>&1 || { cat "$log"; exit 1; }
rm -f "$log"
bash scripts/build.sh >/dev/null
SIGN="$PWD/build/src/cli/conda-sign"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CONDA_KEYS_DIR="$work/keys"

# Two real conda packages (.tar.bz2 with info/index.json), built here.
make_pkg() {  # name version build
  local root="$work/src/$1"
  mkdir -p "$root/info" "$root/bin"
  printf '{"name": "%s", "version": "%s", "build": "%s", "build_number": 0, "depends": [], "subdir": "noarch"}\n' \
    "$1" "$2" "$3" > "$root/info/index.json"
  printf '#!/bin/sh\necho %s\n' "$1" > "$root/bin/$1"
  (cd "$root" && find . -type f | sed 's|^\./||' | sort > info/files)
  mkdir -p "$work/channel/noarch"
  tar -C "$root" -cjf "$work/channel/noarch/$1-$2-$3.tar.bz2" info bin
}
make_pkg hello 1.0 0
make_pkg world 2.1 0
cd "$work/channel/noarch"

step() { printf '\n$ %s\n' "$*"; }
expect() {  # expected-status command...
  local want=$1; shift
  step "conda-sign ${*}"
  set +e; "$SIGN" "$@"; local got=$?; set -e
  if [ "$got" != "$want" ]; then echo "demo: expected exit $want, got $got" >&2; exit 1; fi
  echo "(exit $got)"
}

expect 0 --keygen demo
expect 0 hello-1.0-0.tar.bz2 world-2.1-0.tar.bz2
expect 0 --verify hello-1.0-0.tar.bz2 world-2.1-0.tar.bz2

cp hello-1.0-0.tar.bz2 tampered-1.0-0.tar.bz2
cp hello-1.0-0.tar.bz2.sig tampered-1.0-0.tar.bz2.sig
printf 'X' | dd of=tampered-1.0-0.tar.bz2 bs=1 seek=100 conv=notrunc status=none
rm world-2.1-0.tar.bz2.sig
expect 1 --verify hello-1.0-0.tar.bz2 tampered-1.0-0.tar.bz2 world-2.1-0.tar.bz2
printf '\nDemo done: signed packages verify; a tampered copy is INVALID and a stripped signature is MISSING_SIG.\n'
