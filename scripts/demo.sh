#!/usr/bin/env bash
# Installs what is needed, builds, and shows the main job on its own data:
# a temporary keys directory, packages built here, keygen, sign, verify, a
# tampered copy and a stripped signature refused with their verdicts; then a
# signed channel published with conda-guard index and verified, and an edited
# index and a rolled-back index refused; then the install gate fetching from a
# local HTTP server into a package cache: a good package lands, a tampered one
# is refused and the cache is unchanged; last, an environment linked from that
# cache is audited, clean, then with one installed file changed. Each change
# it makes to a file is printed as the shell command that makes it, before
# the verdict it causes.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
bash scripts/install-deps.sh >"$log" 2>&1 || { cat "$log"; exit 1; }
rm -f "$log"
bash scripts/build.sh >/dev/null
SIGN="$PWD/build/src/cli/conda-sign"
GUARD="$PWD/build/src/cli/conda-guard"
export PATH="$PWD/build/src/cli:$PATH"  # for the commands shown by change()

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CONDA_KEYS_DIR="$work/keys"
export CONDA_GUARD_STATE_DIR="$work/state"

# Two real conda packages (.tar.bz2 with info/index.json), built here.
make_pkg() {  # name version build
  local root="$work/src/$1"
  mkdir -p "$root/info" "$root/bin"
  printf '{"name": "%s", "version": "%s", "build": "%s", "build_number": 0, "depends": [], "subdir": "noarch"}\n' \
    "$1" "$2" "$3" > "$root/info/index.json"
  printf '#!/bin/sh\necho %s\n' "$1" > "$root/bin/$1"
  (cd "$root" && find . -type f | sed 's|^\./||' | sort > info/files)
  local sum size
  sum=$(sha256sum "$root/bin/$1" | cut -d' ' -f1)
  size=$(stat -c %s "$root/bin/$1")
  printf '{"paths": [{"_path": "bin/%s", "path_type": "hardlink", "sha256": "%s", "size_in_bytes": %s}], "paths_version": 1}\n' \
    "$1" "$sum" "$size" > "$root/info/paths.json"
  mkdir -p "$work/channel/noarch"
  tar -C "$root" -cjf "$work/channel/noarch/$1-$2-$3.tar.bz2" info bin
}
make_pkg hello 1.0 0
make_pkg world 2.1 0
cd "$work/channel/noarch"

step() { printf '\n$ %s\n' "$*"; }
expect() {  # expected-status program command...
  local want=$1 prog=$2; shift 2
  step "$(basename "$prog") ${*}"
  set +e; "$prog" "$@"; local got=$?; set -e
  if [ "$got" != "$want" ]; then echo "demo: expected exit $want, got $got" >&2; exit 1; fi
  echo "(exit $got)"
}
# Every change the demo makes to a file is shown, as the shell command that
# makes it and what it does, before the verdict it causes.
change() {  # 'shell command' 'what it does'
  printf '\n$ %s   # %s\n' "$1" "$2"
  eval "$1"
}

printf '== conda-sign: the old workflow, fail-closed ==\n'
expect 0 "$SIGN" --keygen demo
expect 0 "$SIGN" hello-1.0-0.tar.bz2 world-2.1-0.tar.bz2
expect 0 "$SIGN" --verify hello-1.0-0.tar.bz2 world-2.1-0.tar.bz2

mkdir -p "$work/scratch"
cd "$work/scratch"
change 'cp ../channel/noarch/hello-1.0-0.tar.bz2 tampered-1.0-0.tar.bz2; cp ../channel/noarch/hello-1.0-0.tar.bz2.sig tampered-1.0-0.tar.bz2.sig' \
  'a copy of hello with its signature'
change "printf X | dd of=tampered-1.0-0.tar.bz2 bs=1 seek=100 conv=notrunc status=none" \
  'overwrite byte 100 of the copy'
change 'cp ../channel/noarch/world-2.1-0.tar.bz2 .' 'a copy of world without its .sig: stripped'
expect 1 "$SIGN" --verify tampered-1.0-0.tar.bz2 world-2.1-0.tar.bz2

printf '\n== conda-guard: publish a signed channel and verify it ==\n'
cd "$work"
expect 0 "$GUARD" index channel --sign demo --channel-id demo-channel --expires 7d
expect 0 "$GUARD" verify-channel channel --channel-id demo-channel
change 'cp channel/noarch/repodata.json old.json; cp channel/noarch/repodata.json.sig old.json.sig' \
  'keep version 1 of the signed index for later'
expect 0 "$GUARD" index channel --sign demo --channel-id demo-channel --expires 7d
expect 0 "$GUARD" verify-channel channel --channel-id demo-channel --index-only

change "sed -i 's/\"depends\": \\[\\]/\"depends\": [\"evil\"]/' channel/noarch/repodata.json" \
  'add a dependency to the signed index'
expect 1 "$GUARD" verify-channel channel --index-only
change 'cp old.json channel/noarch/repodata.json; cp old.json.sig channel/noarch/repodata.json.sig' \
  'replay version 1, validly signed but older'
expect 1 "$GUARD" verify-channel channel --index-only

printf '\n== conda-guard fetch: the install gate, from a local server, into a package cache ==\n'
change 'conda-guard index channel --sign demo --channel-id demo-channel --expires 7d >/dev/null' \
  'sign the index again (version 3), replacing the replayed one'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work" "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
step "python3 -m http.server --bind 127.0.0.1 --directory $work $port &   # serves channel/ over HTTP"
url="http://127.0.0.1:$port/channel/noarch"
expect 0 "$GUARD" fetch --pkgs-dir pkgs "$url/hello-1.0-0.tar.bz2"
step 'find pkgs -path pkgs/.condaguard -prune -o -print | sort'
find pkgs -path pkgs/.condaguard -prune -o -print | sort
change "printf X | dd of=channel/noarch/world-2.1-0.tar.bz2 bs=1 seek=100 conv=notrunc status=none" \
  'tamper with world on the server (its signed record and .sig stay as they were)'
before=$(find pkgs -path pkgs/.condaguard -prune -o -print | sort | xargs -d '\n' ls -ld --time-style=+%s.%N | sha256sum)
expect 1 "$GUARD" fetch --pkgs-dir pkgs "$url/world-2.1-0.tar.bz2"
after=$(find pkgs -path pkgs/.condaguard -prune -o -print | sort | xargs -d '\n' ls -ld --time-style=+%s.%N | sha256sum)
step 'find pkgs ... | sha256sum   # the package cache before and after the refusal'
echo "before: $before"
echo "after:  $after"
[ "$before" = "$after" ] || { echo "demo: the package cache changed" >&2; exit 1; }

printf '\n== conda-guard audit: an installed environment against its signed packages ==\n'
# What conda's link step does for hello: its files copied from the verified
# folder into the prefix and a conda-meta record (spec section 4) written.
link_hello() {
  mkdir -p env/bin env/conda-meta
  cp -p pkgs/hello-1.0-0/bin/hello env/bin/hello
  python3 - pkgs/hello-1.0-0 env <<'PY'
import json, sys
folder, prefix = sys.argv[1], sys.argv[2]
record = json.load(open(f"{folder}/info/repodata_record.json"))
paths = json.load(open(f"{folder}/info/paths.json"))
record.update(files=[p["_path"] for p in paths["paths"]], paths_data=paths,
              extracted_package_dir=folder, requested_spec="hello",
              link={"source": folder, "type": 1})
json.dump(record, open(f"{prefix}/conda-meta/hello-1.0-0.json", "w"), indent=2)
PY
}
step 'link hello from pkgs/hello-1.0-0 into env/ as conda does (bin/hello, conda-meta/hello-1.0-0.json)'
link_hello
expect 0 "$GUARD" audit -p env --pkgs-dir pkgs
change "printf 'echo owned\\n' >> env/bin/hello" 'append a line to an installed file'
change "printf 'import os\\n' > env/evil.pth" 'drop a .pth file into the environment'
expect 1 "$GUARD" audit -p env --pkgs-dir pkgs
printf '\nDemo done: signed packages verify; a tampered copy is INVALID and a stripped signature MISSING_SIG;\n'
printf 'the signed channel verifies; an edited index is INVALID and a replayed older one ROLLBACK;\n'
printf 'the gate places a verified package in the cache and refuses a tampered one, leaving the cache as it was;\n'
printf 'the audit finds the changed file and the untracked .pth in an environment linked from that cache.\n'
