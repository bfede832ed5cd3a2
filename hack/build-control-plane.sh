#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy (envtest-style) into a cache directory
# outside the clone, keyed by version, so CI on the same machine and later sessions reuse them.
#
#   hack/build-control-plane.sh            # build what is missing, print the bin directory
#   KUBE_VERSION=v1.37.3 hack/build-control-plane.sh   # override hack/versions.env
#   KUBE_BINS="kubelet kube-controller-manager kube-scheduler" hack/build-control-plane.sh
#                                          # the node binaries for hack/cluster-up.sh, same bin dir
#
# Why a wrapper module: k8s.io/kubernetes replaces every k8s.io/* staging module with a local path,
# which `go build` from the proxy cannot follow. The wrapper's go.mod maps each of them to its
# published v0.N.M twin, generated from the real k8s.io/kubernetes go.mod of that release.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
eval "$(grep -E '^[A-Z_]+=' "$here/versions.env" | sed 's/^\([A-Z_]*\)=\(.*\)$/: "${\1:=\2}"/')"
CACHE_ROOT="${CHAPERONE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaperone}"
BIN_DIR="$CACHE_ROOT/control-plane/kube-$KUBE_VERSION-etcd-$ETCD_VERSION/bin"
WORK="$CACHE_ROOT/control-plane/work"

log() { printf '[control-plane] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required to build the test control plane (install Go >= 1.26)"; exit 1; }

# KUBE_BINS selects which k8s.io/kubernetes/cmd/* programs to build. kubectl is built too so tests
# use a client of the same minor version as the server (the machine's may be older). The local
# cluster (hack/cluster-up.sh) adds kubelet, kube-controller-manager and kube-scheduler; they land in
# the same versioned directory, so the default set (what `make test` needs) stays small.
KUBE_BINS="${KUBE_BINS:-kube-apiserver kubectl}"
missing() {
  need_kube=()
  for b in $KUBE_BINS; do [ -x "$BIN_DIR/$b" ] || need_kube+=("$b"); done
  need_etcd=0; [ -x "$BIN_DIR/etcd" ] || need_etcd=1
  [ ${#need_kube[@]} -gt 0 ] || [ $need_etcd -eq 1 ]
}

missing || { echo "$BIN_DIR"; exit 0; }
mkdir -p "$BIN_DIR" "$WORK"
# Two builds at once (make test and make cluster-up in parallel) would rewrite the same wrapper
# module under each other: take turns, then look again at what the other one already built.
exec 9>"$WORK/.lock"
flock 9
missing || { echo "$BIN_DIR"; exit 0; }
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local

minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${KUBE_VERSION#v1.}"

if [ ${#need_kube[@]} -gt 0 ]; then
  mod="$WORK/kube-$KUBE_VERSION"
  mkdir -p "$mod"
  log "fetching k8s.io/kubernetes@$KUBE_VERSION go.mod"
  gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@$KUBE_VERSION from the module proxy"; exit 1; }
  {
    echo "module chaperone.dev/hack/kube"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
      | awk -v v="$staging_version" '{ printf "\t%s => %s %s\n", $1, $1, v }'
    echo ")"
  } >"$mod/go.mod"
  {
    echo "//go:build tools"
    echo "package tools"
    echo "import ("
    for b in "${need_kube[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
    echo ")"
  } >"$mod/tools.go"
  log "resolving modules (first run downloads ~1 GiB into the Go module cache)"
  (cd "$mod" && go mod tidy)
  pkgs=(); for b in "${need_kube[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  log "building ${need_kube[*]} $KUBE_VERSION (cold: 10-25 min on 2 cores)"
  (cd "$mod" && go build -trimpath -ldflags "$ld" -o "$BIN_DIR/" "${pkgs[@]}")
fi

if [ $need_etcd -eq 1 ]; then
  mod="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$mod"
  cat >"$mod/go.mod" <<GOMOD
module chaperone.dev/hack/etcd

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat >"$mod/main.go" <<'GO'
// Command etcd is the upstream etcd server, built from its published module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  log "building etcd $ETCD_VERSION"
  (cd "$mod" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" .)
fi

log "binaries in $BIN_DIR"
echo "$BIN_DIR"
