#!/usr/bin/env bash
# Builds the local cluster's own images as OCI archives (no Docker, no registry) and prints their
# paths, one per line:
#   localhost/pause:chaperone-1   the pod sandbox image (static C program, hack/cluster/pause.c)
#   localhost/toolbox:chaperone-1 static busybox (Debian's busybox-static) and kube-whoami (an
#                                 in-cluster API client, hack/cluster/kube-whoami) for smoke tests
#
#   hack/cluster/build-images.sh OUT_DIR
#
# Both hold only static binaries, so they need nothing from the host at run time.
# The application images (sidecar, operator, ...) are built elsewhere with the same naming
# convention, localhost/<name>:<tag>, and must be used with imagePullPolicy Never or IfNotPresent.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build-images.sh OUT_DIR}"
log() { printf '[cluster-images] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required for kube-whoami (install Go >= 1.24)"; exit 1; }
command -v gcc >/dev/null || { log "gcc is required for the pause image: apt-get install -y gcc libc6-dev"; exit 1; }
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 \
  || { log "a static /bin/busybox is required for the smoke-test image: apt-get install -y busybox-static"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# pause: one static binary at /pause, running as 65535 like the upstream image.
mkdir -p "$work/pause"
gcc -static -Os -s -o "$work/pause/pause" "$here/pause.c"
bash "$here/oci-image.sh" --name localhost/pause:chaperone-1 --rootfs "$work/pause" \
  --out "$out/pause.tar" --user 65535:65535 --env PATH=/ -- /pause >/dev/null
echo "$out/pause.tar"

# toolbox: /bin/busybox with a relative symlink per applet, /bin/kube-whoami, an unprivileged
# default user and the few files programs expect.
r="$work/toolbox"
mkdir -p "$r/bin" "$r/etc" "$r/tmp"
chmod 1777 "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
(cd "$here/kube-whoami" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" \
  go build -trimpath -ldflags "-s -w" -o "$r/bin/kube-whoami" .)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$r/etc/group"
bash "$here/oci-image.sh" --name localhost/toolbox:chaperone-1 --rootfs "$r" \
  --out "$out/toolbox.tar" --user 65534:65534 --env PATH=/bin -- /bin/sh >/dev/null
echo "$out/toolbox.tar"
