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
  redis-server redis-tools e2fsprogs util-linux procps chromium)
BENCH_PKGS=(wrk nginx-light libnginx-mod-nchan curl python3-fastapi python3-uvicorn
  python3-uvloop python3-httptools python3-confluent-kafka)

want=("${BUILD_PKGS[@]}")
case "${1:-all}" in
  build) ;;
  test) want+=("${TEST_PKGS[@]}") ;;
  all) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

# Web assets (Swagger UI for /docs; playwright-core for the /chat browser test,
# which drives Debian's chromium, never a downloaded browser) come from npm,
# pinned by web/package-lock.json; install scripts stay off (swagger-ui-dist's
# only one is telemetry; playwright-core has none).
install_web() {
  local here
  here=$(cd "$(dirname "$0")/.." && pwd)
  [[ -f "$here/web/node_modules/swagger-ui-dist/swagger-ui-bundle.js" &&
     -f "$here/web/node_modules/playwright-core/package.json" ]] && return 0
  command -v npm >/dev/null 2>&1 || { echo "install-deps: npm not found; /docs will be unavailable" >&2; return 0; }
  echo "install-deps: installing web assets (npm ci in web/)" >&2
  (cd "$here/web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
    echo "install-deps: npm ci failed; /docs will be unavailable" >&2
}
trap install_web EXIT

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
  trap '$SUDO rm -f /usr/sbin/policy-rc.d; install_web' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
