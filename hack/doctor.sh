#!/usr/bin/env bash
# `make doctor`: every host program the project needs (hack/host-tools.txt), whether it is here and
# which version; then what `make` builds itself on first use. Exits non-zero when something
# required is missing, with the one apt-get line (or the download) that fixes it. Needs only bash:
# it runs before Node or the npm dependencies exist.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=host-tools.sh
source "$here/host-tools.sh"

version_of() { # NAME PACKAGE — the Debian package's version, or the program's own for the others
  local out=""
  if [ "$2" != - ]; then
    out="$(dpkg-query -W -f='${Version}' "$2" 2>/dev/null)"
  else
    case "$1" in
      go) out="$(go version 2>/dev/null | awk '{print $3}')" ;;
      *) out="$("$1" --version 2>/dev/null | head -n 1)" ;;
    esac
  fi
  printf '%s' "${out:-?}"
}

missing_pkgs=() missing_other=() warnings=()
printf '%-26s %-30s %-9s %-28s %s\n' TOOL PACKAGE SCOPE VERSION STATUS
while read -r name pkg scope check; do
  if host_tool_present "$check"; then
    status=ok
    version="$(version_of "$name" "$pkg")"
  else
    version=-
    if [ "$scope" = optional ]; then
      status="absent (only for make e2e-kind)"
    else
      status=MISSING
      if [ "$pkg" = - ]; then missing_other+=("$name"); else missing_pkgs+=("$pkg"); fi
    fi
  fi
  printf '%-26s %-30s %-9s %-28.28s %s\n' "$name" "$pkg" "$scope" "$version" "$status"
done < <(host_tools_lines build host cluster optional)

# Version floors the list cannot express.
if command -v go >/dev/null; then
  gov="$(go env GOVERSION 2>/dev/null)"; gov="${gov#go}"
  if [ "${gov%%.*}" -lt 1 ] 2>/dev/null || { [ "${gov%%.*}" -eq 1 ] && [ "$(cut -d. -f2 <<<"$gov")" -lt 26 ]; }; then
    missing_other+=("go>=1.26 (have $gov)")
  fi
fi
node_dir="$root/.tools/node-v24/bin"
if [ -x "$node_dir/node" ]; then
  warnings+=("node: $("$node_dir/node" --version) in .tools/ (fetched by hack/ensure-node.sh)")
elif command -v node >/dev/null; then
  warnings+=("node: system $(node --version); make uses it if >= 22.19, else fetches Node 24 into .tools/ with npm")
else
  warnings+=("node: none yet; make fetches Node 24 into .tools/ with npm")
fi
[ "$(id -u)" -eq 0 ] || warnings+=("not root: make test's end-to-end suite (the local cluster) and package installs need root")

echo
# shellcheck source=versions.env
source "$here/versions.env"
cache="${CHAPERONE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaperone}"
echo "Built by make on first use (in $cache):"
kube_bin="$cache/control-plane/kube-$KUBE_VERSION-etcd-$ETCD_VERSION/bin"
for b in kube-apiserver etcd kubectl kubelet kube-controller-manager kube-scheduler kube-proxy; do
  if [ -x "$kube_bin/$b" ]; then s=built; else s="not built yet (make control-plane; the cluster ones by make e2e)"; fi
  v=$KUBE_VERSION; [ "$b" = etcd ] && v=$ETCD_VERSION
  printf '  %-34s %s\n' "$b $v" "$s"
done
if [ -x "$cache/helm-$HELM_VERSION/bin/helm" ]; then s=built; else s="not built yet (make helm)"; fi
printf '  %-34s %s\n' "helm $HELM_VERSION" "$s"
if [ -f "$root/node_modules/.chaperone-deps" ]; then s=installed; else s="not installed yet (make deps)"; fi
printf '  %-34s %s\n' "npm dependencies" "$s"
for w in "${warnings[@]}"; do echo "  note: $w"; done

echo
if [ ${#missing_pkgs[@]} -eq 0 ] && [ ${#missing_other[@]} -eq 0 ]; then
  echo "doctor: everything the project needs is here."
  exit 0
fi
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
  echo "doctor: missing Debian packages. Fix with:"
  echo "  apt-get update && apt-get install -y ${missing_pkgs[*]}"
  echo "  (make test installs them itself when run as root)"
fi
if [ ${#missing_other[@]} -gt 0 ]; then
  echo "doctor: missing, not from apt: ${missing_other[*]} — see the README's prerequisites"
fi
exit 1
