#!/usr/bin/env bash
# Runs a command with Node.js >= 24 first on PATH. When the machine's `node` is older (Debian 12
# ships 18; many hosts still have 20, end of life since April 2026), the official Linux build of
# Node 24 is taken from the npm registry (package node-linux-<arch>, its `bin/node`) into the
# project's cache, next to the mediasoup worker cache.
#
#   scripts/node.sh --ensure     fetch Node 24 into the cache when needed (scripts/setup.sh does)
#   scripts/node.sh --bin-dir    print the directory to put first on PATH (empty: the machine's node)
#   scripts/node.sh CMD ARGS...  run CMD with that directory first on PATH (tap, npm and every
#                                `#!/usr/bin/env node` script then run on Node 24)
set -euo pipefail

node_major_wanted=24
# Pinned so that CI and developers run the same build; npm verifies the tarball's integrity.
node_pkg_version=24.22.3

cache_root="${MEDIASOUP_WORKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/teleconsult-sfu}"
cached_dir="$cache_root/node-$node_pkg_version"

machine_node_ok() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge "$node_major_wanted" ]
}

bin_dir() {
  if machine_node_ok; then
    echo ""
  elif [ -x "$cached_dir/bin/node" ]; then
    echo "$cached_dir/bin"
  else
    echo "node.sh: Node.js >= $node_major_wanted is needed; run: bash scripts/setup.sh" >&2
    return 1
  fi
}

ensure() {
  if machine_node_ok || [ -x "$cached_dir/bin/node" ]; then return 0; fi
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "node.sh: no Node.js package for $(uname -m); install Node.js >= $node_major_wanted" >&2; return 1 ;;
  esac
  local tmp
  tmp=$(mktemp -d)
  echo "[node] fetching node-linux-$arch@$node_pkg_version from the npm registry into $cached_dir"
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$node_pkg_version" >/dev/null)
  mkdir -p "$tmp/unpacked" "$cache_root"
  tar xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp/unpacked"
  "$tmp/unpacked/package/bin/node" --version >/dev/null
  # Rename into place so that a concurrent run never sees a half-unpacked folder.
  rm -rf "$cached_dir.tmp-$$"
  mv "$tmp/unpacked/package" "$cached_dir.tmp-$$"
  mv -T "$cached_dir.tmp-$$" "$cached_dir" 2>/dev/null || rm -rf "$cached_dir.tmp-$$"
  rm -rf "$tmp"
}

case "${1:-}" in
  --ensure) ensure ;;
  --bin-dir) bin_dir ;;
  "") echo "usage: scripts/node.sh --ensure | --bin-dir | CMD [ARGS...]" >&2; exit 2 ;;
  *)
    dir=$(bin_dir)
    [ -z "$dir" ] || export PATH="$dir:$PATH"
    exec "$@"
    ;;
esac
