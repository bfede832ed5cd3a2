#!/usr/bin/env bash
# Builds helm from the Go module proxy into a cache directory outside the clone, keyed by version,
# so CI on the same machine and later sessions reuse it. The chart tests (e2e/src/helm-chart.int.test.ts)
# run `helm lint` and `helm template` with it.
#
#   hack/build-helm.sh                         # build if missing, print the helm binary path
#   HELM_VERSION=v3.22.1 hack/build-helm.sh    # override hack/versions.env
#
# `go install module/cmd@version` needs no wrapper module: helm's go.mod has no replace directives.
# The major version picks the module path (helm.sh/helm/v3 or helm.sh/helm/v4).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
eval "$(grep -E '^[A-Z_]+=' "$here/versions.env" | sed 's/^\([A-Z_]*\)=\(.*\)$/: "${\1:=\2}"/')"
CACHE_ROOT="${CHAPERONE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaperone}"
BIN_DIR="$CACHE_ROOT/helm-$HELM_VERSION/bin"

log() { printf '[helm] %s\n' "$*" >&2; }

if [ -x "$BIN_DIR/helm" ]; then echo "$BIN_DIR/helm"; exit 0; fi

command -v go >/dev/null || { log "Go is required to build helm (install Go >= 1.26)"; exit 1; }

major="${HELM_VERSION#v}"; major="${major%%.*}"
case "$major" in
  3 | 4) module="helm.sh/helm/v$major" ;;
  *) log "HELM_VERSION=$HELM_VERSION: only helm v3.x and v4.x are supported (set it in hack/versions.env)"; exit 1 ;;
esac

export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$BIN_DIR"

# Like helm's own Makefile: the Kubernetes version `helm template` and `helm lint` assume without a
# cluster comes from the client-go it is built with. Without these flags it is v1.20, and charts
# that declare a kubeVersion (ours: >= 1.29) fail to render offline.
gomod=$(go mod download -json "$module@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p') || true
[ -f "$gomod" ] || { log "could not download $module@$HELM_VERSION from the module proxy: check GOPROXY and that the tag exists, or set HELM_VERSION"; exit 1; }
kube_minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
[ -n "$kube_minor" ] || { log "no k8s.io/client-go requirement in $gomod: cannot tell which Kubernetes version helm $HELM_VERSION targets"; exit 1; }
ld="-s -w -X $module/internal/version.version=$HELM_VERSION -X $module/internal/version.gitTreeState=clean"
for p in "$module/pkg/chartutil" "$module/pkg/lint/rules"; do
  ld="$ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kube_minor"
done

mkdir -p "$BIN_DIR"
log "building $module/cmd/helm@$HELM_VERSION (cold: 3-8 min on 2 cores)"
if ! go install -trimpath -ldflags "$ld" "$module/cmd/helm@$HELM_VERSION"; then
  rm -f "$BIN_DIR/helm"
  log "could not build $module/cmd/helm@$HELM_VERSION from the module proxy: check GOPROXY and that the tag exists, or set HELM_VERSION"
  exit 1
fi
"$BIN_DIR/helm" version --short >&2 || { rm -f "$BIN_DIR/helm"; log "the helm just built does not run (see above); delete $BIN_DIR and retry"; exit 1; }
log "binary in $BIN_DIR"
echo "$BIN_DIR/helm"
