#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan (the library itself
# instrumented too: -Dfuzzing=true), makes a seed corpus from the test data,
# and runs each target for SECONDS (default 60).
#
# Seeds (build-fuzz/seeds/NAME, made afresh each run):
#   keys      PEM keys from a fresh `conda-sign --keygen` (RSA and Ed25519,
#             private and public)
#   sigfile   .sig files made by `conda-sign -i` with those keys
#   package   small .conda and .tar.bz2 packages from fuzz/make_seeds (the
#             test suite's package builder), well-formed and odd ones
#   repodata  the signed repodata.json of `conda-guard index --sign` on them
#   policy    the example of man/conda-guard-policy.5 and small policies
#   condarc   small .condarc files using the keys the gate reads
#   explicit  explicit files as `conda list --explicit` writes them
# plus the matching files of ../shared/fixtures when it exists (or
# $CONDAGUARD_SHARED_DIR). What the fuzzer finds goes to fuzz/corpus/NAME,
# which persists between runs. Exits 1 if any target crashed.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
max_len=65536
targets=(sigfile keys package repodata policy condarc explicit)

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v clang++ >/dev/null; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends clang libclang-rt-dev
fi

if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++ meson setup build-fuzz -Dfuzzing=true -Dtests=true -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false
fi
# Only what fuzzing needs, not the test binaries.
ninja -C build-fuzz "${targets[@]/#/fuzz/fuzz_}" fuzz/make_seeds src/cli/conda-sign src/cli/conda-guard

sign=$PWD/build-fuzz/src/cli/conda-sign
guard=$PWD/build-fuzz/src/cli/conda-guard
seeds=$PWD/build-fuzz/seeds
work=$(mktemp -d "${TMPDIR:-/tmp}/condaguard-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"
for name in "${targets[@]}"; do mkdir -p "$seeds/$name" "fuzz/corpus/$name"; done

# add TARGET FILE: copies FILE into TARGET's seeds, named by its content,
# unless it is longer than the fuzzer's inputs may be.
add() {
  [ "$(stat -c %s "$2")" -le "$max_len" ] || return 0
  cp "$2" "$seeds/$1/$(sha256sum <"$2" | cut -c1-16)"
}

# The tools run on the sanitized build too: a seed that trips them fails here.
export HOME=$work CONDA_KEYS_DIR=$work/keys CONDA_GUARD_STATE_DIR=$work/state
"$sign" --keygen seed-rsa >/dev/null
"$sign" --keygen seed-ed --type ed25519 >/dev/null
for f in "$work"/keys/*; do add keys "$f"; done

./build-fuzz/fuzz/make_seeds "$work"
pkgs=("$work"/channel/noarch/*.conda "$work"/channel/noarch/*.tar.bz2)
for f in "${pkgs[@]}" "$work"/odd/*; do add package "$f"; done
"$sign" -i seed-rsa "${pkgs[@]:0:2}" >/dev/null
"$sign" -i seed-ed "${pkgs[@]:2}" >/dev/null
for f in "$work"/channel/noarch/*.sig; do add sigfile "$f"; done
"$guard" index "$work/channel" --sign seed-ed --channel-id seed >/dev/null
add repodata "$work/channel/noarch/repodata.json"
add sigfile "$work/channel/noarch/repodata.json.sig"

printf 'min_rsa_bits: 3072\nparallel: 8\nmin_age: 3d\nlink_scripts: refuse\nchannels:\n  - match: conda-forge\n    keys: [MyKey]\n    index: required\n    channel_id: conda-forge\n' >"$work/p1.yaml"
printf 'revoked_keys:\n  - fingerprint: %s\n    reason: lost\n    date: 2026-01-02\nmax_index_age: 30d\nmax_index_bytes: 1GiB\n' "$(printf %064d 0)" >"$work/p2.yaml"
sed -n '/^\.EX/,/^\.EE/p' man/conda-guard-policy.5 | sed '1d;$d' | sed 's/\\-/-/g' >"$work/p3.yaml"
for f in "$work"/p?.yaml; do add policy "$f"; done
printf 'channels:\n  - conda-forge\n  - defaults\nchannel_alias: https://conda.example/t/tok\ncustom_channels:\n  mine: https://mine.example\nssl_verify: false\nproxy_servers:\n  https: http://proxy:3128\npkgs_dirs: [~/pkgs]\nremote_max_retries: 2\n' >"$work/c1.yml"
printf 'channels: #!final\n  - https://u:p@h.example/x\ndefault_channels: [https://repo.example/main]\ncustom_multichannels:\n  both: [a, b]\n' >"$work/c2.yml"
for f in "$work"/c?.yml; do add condarc "$f"; done
printf '# platform: linux-64\n@EXPLICIT\nhttps://conda.example/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda#%s\n./chan/noarch/x-1.0-0.tar.bz2\n' "$(printf %064d 0)" >"$work/e1.txt"
add explicit "$work/e1.txt"

shared=${CONDAGUARD_SHARED_DIR:-$PWD/../shared}
if [ -d "$shared/fixtures" ]; then
  while IFS= read -r -d '' f; do
    case "$f" in
      *.sig) add sigfile "$f" ;;
      *.pub | */keys/*) add keys "$f" ;;
      *.conda | *.tar.bz2) add package "$f" ;;
      */repodata*.json) add repodata "$f" ;;
    esac
  done < <(find "$shared/fixtures" -type f -print0)
else
  echo "no $shared/fixtures: seeds from the test builder only"
fi
for name in "${targets[@]}"; do echo "seeds for fuzz_$name: $(ls "$seeds/$name" | wc -l)"; done

failed=()
for name in "${targets[@]}"; do
  echo "== fuzz_$name for ${seconds}s"
  ./build-fuzz/fuzz/fuzz_$name -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    "fuzz/corpus/$name" "$seeds/$name" || failed+=("fuzz_$name")
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed: ${failed[*]} (the crashing input is in ./crash-*)"
  exit 1
fi
echo "fuzzing: no crash in ${#targets[@]} targets, ${seconds}s each"
