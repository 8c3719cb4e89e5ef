#!/usr/bin/env bash
# Installs what the server and its tests need on a fresh Debian 12 machine: Debian packages (when
# run as root; otherwise names the missing ones), Node.js 24 when the machine's node is older
# (scripts/node.sh), npm dependencies, and the mediasoup worker (scripts/build-worker.mjs: from
# MEDIASOUP_WORKER_BIN, the cache outside the clone, the internet, or the MEDIASOUP_SOURCES folder).
# Usage: scripts/setup.sh [--quiet] [--profile start|test]
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=0
profile=test
while [ $# -gt 0 ]; do
  case "$1" in
    --quiet) quiet=1 ;;
    --profile) profile="$2"; shift ;;
    *) echo "setup: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
say() { [ "$quiet" = 1 ] || echo "[setup] $*"; }

# Build the worker (scripts/build-worker.mjs): compiler, ninja, python3 for the meson it brings, and
# Debian's OpenSSL, the one library it links from the system (docs/engine.md).
build_pkgs=(g++ ninja-build pkg-config python3 libssl-dev)
# Tests: real browsers (Chromium, Firefox ESR), a real SIP peer, a real Redis, a real TURN server,
# network namespaces and tc, a real PostgreSQL (the clustered journal store), a real softphone
# (baresip-core: SRTP interop) and tcpdump (what the phone leg puts on the wire).
test_pkgs=(chromium firefox-esr sip-tester redis-server coturn iproute2 espeak-ng sox postgresql baresip-core tcpdump)
pkgs=("${build_pkgs[@]}")
[ "$profile" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# Node.js 24 from the npm registry into the project's cache when the machine's node is older; the
# rest of this script, and the package.json scripts (through scripts/node.sh), run on it.
bash scripts/node.sh --ensure
node_dir=$(bash scripts/node.sh --bin-dir)
[ -z "$node_dir" ] || export PATH="$node_dir:$PATH"
say "node $(node --version)"

if [ ! -d node_modules/mediasoup ] || [ ! -d node_modules/tap ]; then
  say "installing npm dependencies"
  npm ci --no-fund --no-audit >/dev/null
fi

if [ ! -x node_modules/mediasoup/worker/out/Release/mediasoup-worker ]; then
  node scripts/build-worker.mjs
fi
say "ready"
