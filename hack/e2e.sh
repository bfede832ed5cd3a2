#!/usr/bin/env bash
# The end-to-end suite (e2e/src/*.e2e.test.ts), run by `make e2e` and by `make test`.
#
# On the local cluster (default): uses the running one, or starts it (hack/cluster-up.sh, root) and
# stops it again afterwards, so the host ends as it began. With CHAPERONE_E2E_KUBECONFIG set (see
# e2e/src/support/cluster-under-test.ts; `make e2e-kind` sets it) it runs against that cluster.
# Needs the images (make images) and helm (make helm); the Makefile builds both first.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
log() { printf '[e2e] %s\n' "$*" >&2; }

if [ -n "${CHAPERONE_E2E_KUBECONFIG:-}" ]; then
  exec npx vitest run --project e2e
fi

if [ "$(id -u)" -ne 0 ]; then
  log "error: the e2e suite runs real pods on the local cluster, which needs root (containerd, the kubelet, a bridge and firewall rules)."
  log "  run it as root (sudo make test), or point it at another cluster with CHAPERONE_E2E_KUBECONFIG (docs/development.md),"
  log "  or run only the rest: make lint typecheck test-unit test-integration"
  exit 1
fi

# shellcheck source=cluster/cluster.env
source "$here/cluster/cluster.env"
started=0
if [ ! -f "$STATE_DIR/cluster.json" ]; then
  started=1
  trap 'log "stopping the local cluster it started"; bash "$here/cluster-down.sh" || log "warning: make cluster-down failed; run it by hand"' EXIT
fi
t=$SECONDS
bash "$here/cluster-up.sh" >/dev/null
log "local cluster ready in $((SECONDS - t)) s$([ $started = 1 ] && echo " (started; stopped again afterwards)" || echo " (already running; left running)")"
npx vitest run --project e2e
