#!/usr/bin/env bash
# Installs what switchboard needs to build, test and benchmark on Debian/Ubuntu.
# Idempotent: only packages that are missing are installed. Elsewhere it prints
# the list so that you can install the equivalents with your package manager.
#
# Usage: scripts/install-deps.sh [--bench]
#   default   build + test dependencies (compilers, headers, real peers for tests, and nginx, which the
#             scaling_harness test bundles and starts)
#   --bench   also the peers the load benchmarks compare against (Boost headers for the Beast peers, Nchan)
set -euo pipefail

build_and_test=(
  g++ clang cmake ninja-build make pkg-config ccache
  libasio-dev nlohmann-json3-dev catch2 libbenchmark-dev libssl-dev zlib1g-dev
  libfuzzer-14-dev libclang-rt-14-dev
  redis-server redis-tools curl wrk openssl nodejs npm chromium procps
  gdb  # the test watchdog prints the stacks of a hung test with it
  nginx  # scaling_harness (benchmarks/load) checks that bundle.sh's nginx starts from the bundle
)
bench=(libboost-dev libnginx-mod-nchan)

wanted=("${build_and_test[@]}")
case $# in
  0) ;;
  1) [[ $1 == --bench ]] || { echo "install-deps: unknown option '$1' (usage: $0 [--bench])" >&2; exit 2; }
     wanted+=("${bench[@]}") ;;
  *) echo "install-deps: too many arguments (usage: $0 [--bench])" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "install-deps: not a Debian/Ubuntu system; please install the equivalents of:" >&2
  printf '  %s\n' "${wanted[@]}" >&2
  exit 0
fi

is_installed() {
  # Node.js may come from NodeSource or a tarball rather than Debian; accept any working binary.
  case "$1" in
    nodejs) command -v node >/dev/null && return 0 ;;
    npm) command -v npm >/dev/null && return 0 ;;
  esac
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${wanted[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: everything is installed"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    echo "install-deps: not root and no sudo; please install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Debian starts services on install; tests start their own servers on free ports.
for svc in redis-server nginx; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl stop "$svc" || true
  fi
done
