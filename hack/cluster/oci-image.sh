#!/usr/bin/env bash
# Writes a one-layer OCI image archive from a root filesystem directory, without Docker or a
# registry, for `ctr -n k8s.io images import` (and `kind load image-archive`):
#
#   hack/cluster/oci-image.sh --name localhost/pause:1 --rootfs DIR --out pause.tar \
#     [--user 65535:65535] [--env PATH=/bin] -- /pause
#
# Reproducible: the layer is an uncompressed tar with sorted names, mtime 0 and numeric owner 0, and
# the config has a fixed creation date, so the same rootfs always gives the same image digest. The
# index carries the full reference as `io.containerd.image.name`, which is how `ctr import` names
# the image (a bare tag would become docker.io/library/...).
set -euo pipefail

name="" rootfs="" out="" user="" env="PATH=/usr/local/bin:/usr/bin:/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --rootfs) rootfs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --env) env="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "oci-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$name" ] && [ -d "$rootfs" ] && [ -n "$out" ] && [ $# -gt 0 ] || {
  echo "usage: oci-image.sh --name REF --rootfs DIR --out FILE.tar [--user U] [--env K=V] -- ENTRYPOINT..." >&2
  exit 2
}
case "$name" in */*:*) ;; *) echo "oci-image: --name must be a full reference such as localhost/x:1, got '$name'" >&2; exit 2 ;; esac

json_str() { local s="${1//\\/\\\\}"; s="${s//\"/\\\"}"; printf '"%s"' "$s"; }
json_arr() { local sep="" a; printf '['; for a in "$@"; do printf '%s' "$sep"; json_str "$a"; sep=","; done; printf ']'; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
blobs="$work/layout/blobs/sha256"
mkdir -p "$blobs"

# The layer: uncompressed, so its digest is also its diff ID.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$work/layer.tar" .
layer_digest="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
layer_size="$(stat -c %s "$work/layer.tar")"
mv "$work/layer.tar" "$blobs/$layer_digest"

put_blob() { # FILE -> prints "digest size", moves FILE into blobs/
  local d s
  d="$(sha256sum "$1" | cut -d' ' -f1)"; s="$(stat -c %s "$1")"
  mv "$1" "$blobs/$d"; echo "$d $s"
}

{
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{'
  printf '"Env":%s,"Entrypoint":%s' "$(json_arr "$env")" "$(json_arr "$@")"
  [ -z "$user" ] || printf ',"User":%s' "$(json_str "$user")"
  printf '},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer_digest"
} >"$work/config.json"
read -r config_digest config_size < <(put_blob "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(put_blob "$work/manifest.json")

printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":%s,"org.opencontainers.image.ref.name":%s}}]}' \
  "$manifest_digest" "$manifest_size" "$(json_str "$name")" "$(json_str "${name##*:}")" >"$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "sha256:$manifest_digest"
