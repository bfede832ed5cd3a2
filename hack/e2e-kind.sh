#!/usr/bin/env bash
# `make e2e-kind`: the same e2e suite on a kind cluster, for machines with Docker (the project's own
# machines have none; this is the thin path the suite's cluster-agnostic design allows). It
#   1. creates the kind cluster KIND_CLUSTER (default chaperone-e2e) unless it exists,
#   2. loads the images from dist/images/*.tar (make images) with `kind load image-archive`,
#   3. runs hack/e2e.sh against it: the suite installs the Helm chart itself, and runs PostgreSQL on
#      this machine on the gateway address of kind's Docker network, where pods reach it,
#   4. deletes the cluster it created (KEEP_KIND_CLUSTER=1 keeps it).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
log() { printf '[e2e-kind] %s\n' "$*" >&2; }
die() { printf '[e2e-kind] error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is required (kind runs its nodes as containers)"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed); on machines without one use: make cluster-up && make e2e"
command -v kind >/dev/null || die "kind is required: go install sigs.k8s.io/kind@latest (or see https://kind.sigs.k8s.io)"

name="${KIND_CLUSTER:-chaperone-e2e}"
created=0
if ! grep -qxF "$name" <<<"$(kind get clusters 2>/dev/null)"; then
  log "creating kind cluster $name"
  kind create cluster --name "$name" --wait 120s
  created=1
fi
kubeconfig="$(mktemp)"
cleanup() {
  rm -f "$kubeconfig"
  if [ "$created" = 1 ] && [ "${KEEP_KIND_CLUSTER:-0}" != 1 ]; then
    log "deleting kind cluster $name"
    kind delete cluster --name "$name"
  fi
}
trap cleanup EXIT
kind get kubeconfig --name "$name" >"$kubeconfig"

for image in sidecar operator collector agent; do
  log "loading $image"
  kind load image-archive "$repo/dist/images/$image.tar" --name "$name"
done

# The IPv4 gateway and subnet of kind's Docker network: pods reach the host there, and their
# traffic arrives from that subnet (kind's nodes masquerade it).
read -r gateway subnet < <(docker network inspect kind \
  -f '{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{"\n"}}{{end}}' | grep -E '^[0-9]+\.' | head -1)
[ -n "${gateway:-}" ] || die "could not find the IPv4 gateway of Docker network 'kind'"

CHAPERONE_E2E_KUBECONFIG="$kubeconfig" CHAPERONE_E2E_HOST_ADDRESS="$gateway" CHAPERONE_E2E_POD_CLIENTS="$subnet" \
  bash "$here/e2e.sh"
