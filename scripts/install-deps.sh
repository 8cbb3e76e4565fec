#!/usr/bin/env bash
# Installs everything condaguard needs to build, test and benchmark on Debian 12
# (as root; uses sudo when not root). Safe to run again.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Only what meson.build names, the tests (nginx-light: the fetch and gate
# tests' real server; python3-pluggy: the wrapper tests' fake conda), the
# benchmarks (openssl, time; curl and bsdtar from
# libarchive-tools are the gate benchmark's reference) and the demo use.
# scripts/fuzz.sh installs clang itself.
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  ca-certificates g++ meson ninja-build pkg-config git \
  openssl libssl-dev libfmt-dev nlohmann-json3-dev libcli11-dev \
  libgtest-dev libgmock-dev \
  libarchive-dev libsimdjson-dev libcurl4-openssl-dev libzstd-dev libyaml-cpp-dev \
  nginx-light curl libarchive-tools \
  python3 python3-pycryptodome python3-pluggy time bzip2 zstd
