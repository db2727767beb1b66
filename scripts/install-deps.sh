#!/usr/bin/env bash
# Installs the Debian packages spate needs to build, test and benchmark.
# Idempotent: asks dpkg what is already there and installs only what is
# missing, so `make run` / `make test` on a ready machine cost ~50 ms here.
# Keep this list and docs/DEPENDENCIES.md in step.
set -euo pipefail

BUILD_PKGS=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev llvm
  libuv1-dev node-llhttp libwslay-dev librdkafka-dev libjansson-dev libssl-dev
  libhiredis-dev libfyaml-dev libcmocka-dev)
TEST_PKGS=(python3 python3-pytest python3-httpx python3-websockets kcat
  redis-server redis-tools e2fsprogs util-linux procps)
BENCH_PKGS=(wrk nginx-light libnginx-mod-nchan)

want=("${BUILD_PKGS[@]}")
case "${1:-all}" in
  build) ;;
  test) want+=("${TEST_PKGS[@]}") ;;
  all) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$st" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps packages such as nginx and redis-server from starting
# system-wide daemons on install: tests and benchmarks start their own.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
