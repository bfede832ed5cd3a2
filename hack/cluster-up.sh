#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster on this machine, without Docker or a registry:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet built by
# hack/build-control-plane.sh, Debian's containerd + runc as the runtime and Debian's CNI plugins
# (bridge + host-local) for pod networking, with a locally built pause image.
#
#   hack/cluster-up.sh [IMAGE.tar...]   # start (or find running), import extra OCI archives,
#                                       # print the admin kubeconfig path
#   hack/cluster-down.sh                # undo everything this changed
#
# Network: one bridge (BRIDGE, GATEWAY in hack/cluster/cluster.env). The API server and the kubelet
# listen on the gateway address, pods reach host services there too. Pods get no DNS and only a
# route to the Service range; kube-proxy (nftables mode) routes Service IPs to their endpoints, and
# the kubernetes Service IP is also DNAT-ed to the API server by one rule of our own (so in-cluster
# clients work before kube-proxy's first sync). Two firewall rules keep everything on the machine:
# a raw-table rule drops what a pod sends that is not for another pod, the host itself or a Service
# IP (before routing), and a mangle FORWARD rule drops whatever from the bridge would be routed out
# of it after DNAT (a Service whose endpoints point elsewhere, a Service IP nobody serves).
# Webhooks use endpoint routing in the API server.
#
# Needs root and Linux cgroups (v1 or v2). Everything it changes on the host is recorded in
# STATE_DIR/host-state.env before it is changed, so cluster-down can restore it even after a
# failed start.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster/cluster.env
source "$here/cluster/cluster.env"
S="$STATE_DIR" R="$RUN_DIR" PKI="$STATE_DIR/pki"
KUBECONFIG_ADMIN="$S/admin.kubeconfig"
CTR_SOCK="$R/containerd/containerd.sock"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

log() { printf '[cluster-up] %s\n' "$*" >&2; }
die() { printf '[cluster-up] error: %s\n' "$*" >&2; exit 1; }
t0=$SECONDS

# --- Prerequisites ------------------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || die "the local cluster needs Linux (use 'make e2e-kind' elsewhere)"
[ "$(id -u)" -eq 0 ] || die "must run as root (it starts containerd and the kubelet, creates a bridge and firewall rules): sudo make cluster-up"

# --- Already up? --------------------------------------------------------------------------------
alive() { # NAME — its recorded process exists and is not a zombie
  local st
  [ -f "$R/$1.pid" ] || return 1
  st="$(sed 's/.*) //' "/proc/$(cat "$R/$1.pid")/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$st" ] && [ "$st" != Z ]
}
BIN=""
kubectl_() { "$BIN/kubectl" --kubeconfig="$KUBECONFIG_ADMIN" "$@"; }
import_images() {
  local f
  for f in "$@"; do
    log "importing $(basename "$f")"
    ctr --address "$CTR_SOCK" -n k8s.io images import "$f" >/dev/null \
      || die "ctr could not import $f (see $S/logs/containerd.log)"
  done
}
summary() {
  cat >&2 <<MSG
  KUBECONFIG=$KUBECONFIG_ADMIN
  node $NODE_NAME, API server https://$GATEWAY:$API_PORT (in pods: https://$API_SERVICE_IP:443)
  pods reach host services on $GATEWAY (bind them to $GATEWAY or 0.0.0.0)
  images: localhost/<name>:<tag> with imagePullPolicy Never/IfNotPresent; import with
    hack/cluster-up.sh IMAGE.tar  (or: ctr --address $CTR_SOCK -n k8s.io images import IMAGE.tar)
  logs: $S/logs/   stop: make cluster-down
MSG
  echo "$KUBECONFIG_ADMIN"
}

dead=()
if [ -f "$S/cluster.json" ]; then
  for c in "${COMPONENTS[@]}"; do alive "$c" || dead+=("$c"); done
  if [ ${#dead[@]} -eq 0 ]; then
    BIN="$(sed -n 's/.*"binDir": *"\([^"]*\)".*/\1/p' "$S/cluster.json")"
    if kubectl_ get --raw /readyz >/dev/null 2>&1; then
      log "already up (stop it with: make cluster-down)"
      [ $# -eq 0 ] || import_images "$@"
      summary
      exit 0
    fi
  fi
fi
if [ -e "$S" ] || [ -e "$R" ] || ip link show "$BRIDGE" >/dev/null 2>&1; then
  # A cluster whose processes were ended (the session that started it stopped), one that is only
  # partly running, or a cluster-up that failed half-way: clean up after it, then start afresh.
  log "a previous cluster is left over but not running (stopped: ${dead[*]:-unknown}); cleaning it up first"
  bash "$here/cluster-down.sh" || die "could not clean up the previous cluster; run 'make cluster-down' and retry"
fi

# --- Prerequisites for starting -----------------------------------------------------------------
command -v go >/dev/null || die "Go >= 1.26 is required (it builds the Kubernetes binaries and the smoke-test image): install Go or put it on PATH"

# Debian packages: hack/host-tools.txt's `cluster` scope (containerd, runc, CNI plugins, iptables,
# nftables for kube-proxy, …), installed when missing.
# shellcheck source=host-tools.sh
source "$here/host-tools.sh"
host_tools_install cluster-up cluster || die "the cluster's host packages are missing (above); 'make doctor' lists every tool"

# cgroups: the kubelet needs cpu, cpuacct, memory and pids (hugetlb optional). On cgroup v1 each is
# its own hierarchy; on v2 they must be enabled in the root.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  for c in cpu memory pids; do
    grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || die "cgroup v2 controller '$c' is not available (/sys/fs/cgroup/cgroup.controllers); the kubelet needs cpu, memory and pids"
  done
else
  for c in cpu cpuacct cpuset memory pids devices freezer; do
    [ -d "/sys/fs/cgroup/$c" ] || die "cgroup v1 controller '$c' is not mounted at /sys/fs/cgroup/$c; the kubelet and runc need cpu, cpuacct, cpuset, memory, pids, devices and freezer"
  done
fi
grep -qw overlay /proc/filesystems || die "the kernel has no overlay filesystem (containerd's overlayfs snapshotter needs it)"
[ -d /proc/sys/net/bridge ] || log "warning: br_netfilter is not loaded; pod-to-pod traffic on the bridge then skips iptables (harmless here)"

if grep -q "^${POD_CIDR%/*}" <<<"$(ip -4 route show)"; then die "the pod range $POD_CIDR is already routed on this machine: $(ip -4 route show | grep "^${POD_CIDR%/*}")"; fi
for p in "127.0.0.1:$ETCD_CLIENT_PORT" "127.0.0.1:$ETCD_PEER_PORT" "127.0.0.1:10248" "127.0.0.1:10257" "127.0.0.1:10259" \
  "127.0.0.1:10249" "127.0.0.1:10256"; do
  if [ -n "$(ss -Htln "sport = :${p##*:}")" ]; then die "port ${p##*:} is in use (needed by the cluster): $(ss -Htlnp "sport = :${p##*:}" | head -1)"; fi
done

# --- Binaries and images (before anything on the host changes) ----------------------------------
log "building/finding kubelet, kube-proxy, kube-controller-manager, kube-scheduler, kube-apiserver, etcd (cached)"
BIN="$(KUBE_BINS="kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy" bash "$here/build-control-plane.sh")"
images_dir="$(mktemp -d)"
trap 'rm -rf "$images_dir"' EXIT
# The pause and toolbox images, by the project's OCI writer (hack/images/, run with Node >= 22.19).
node_bin="$(bash "$here/ensure-node.sh")" || die "could not provide Node >= 22.19 for the image writer (see above)"
built="$("$node_bin/node" "$here/build-images.ts" --cluster --out "$images_dir")" \
  || die "could not build the cluster's pause and toolbox images (see above)"
mapfile -t own_images <<<"$built"

# --- Record the host state we are about to change -----------------------------------------------
# From here on a failure leaves host changes behind: say how to undo them (the next cluster-up
# also cleans up first).
trap 'log "failed at line $LINENO; logs in $S/logs/; undo the partial start with: make cluster-down"' ERR
mkdir -p "$S/logs" "$S/pki" "$S/cni" "$S/ipam" "$S/pod-logs" "$R"
chmod 0700 "$S"
existed() { [ -e "$1" ] && echo 1 || echo 0; }
{
  echo "# Written by hack/cluster-up.sh before it changed anything; read by hack/cluster-down.sh."
  # Paths some component writes to outside STATE_DIR/RUN_DIR (hard-coded in the kubelet,
  # containerd's shim socket directory and libcni's cache).
  printf 'EXISTED_var_lib_kubelet=%s\n' "$(existed /var/lib/kubelet)"
  printf 'EXISTED_var_log_containers=%s\n' "$(existed /var/log/containers)"
  printf 'EXISTED_var_log_pods=%s\n' "$(existed /var/log/pods)"
  printf 'EXISTED_var_lib_cni=%s\n' "$(existed /var/lib/cni)"
  printf 'EXISTED_run_containerd=%s\n' "$(existed /run/containerd)"
  printf 'EXISTED_run_netns=%s\n' "$(existed /run/netns)"
  printf 'EXISTED_dev_kmsg=%s\n' "$(existed /dev/kmsg)"
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$d" ] && printf 'EXISTED_CGROUP=%q\n' "$d"
  done
  # nft tables that iptables creates on first use (nft backend), comma-separated.
  printf 'NFT_TABLES_BEFORE=%q\n' "$(nft list tables 2>/dev/null | sed -n 's/^table //p' | paste -sd, -)"
  echo "BIN_DIR=$BIN"
} >"$S/host-state.env"
# Sysctls the kubelet (setupKernelTunables) and the bridge plugin (isGateway: ip_forward) set.
for k in net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
  echo "$k=$(sysctl -n "$k")"
done >"$S/sysctl.saved"

# The kubelet's OOM watcher reads /dev/kmsg (kind links /dev/console when it is missing).
[ -e /dev/kmsg ] || ln -s /dev/console /dev/kmsg

# --- Bridge and firewall (before any pod can exist) ---------------------------------------------
log "bridge $BRIDGE $GATEWAY, firewall rules"
ip link add "$BRIDGE" type bridge
ip addr add "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up

# Egress from pods, checked in the raw table (before conntrack, DNAT and routing, so it holds
# whatever ip_forward is): allow other pods, the host's own addresses and Service IPs (DNAT-ed by
# kube-proxy, then checked again below); drop everything else.
iptables -w -t raw -N CHAPERONE-POD-EGRESS
iptables -w -t raw -A CHAPERONE-POD-EGRESS -d "$POD_CIDR" -j RETURN
iptables -w -t raw -A CHAPERONE-POD-EGRESS -m addrtype --dst-type LOCAL -j RETURN
iptables -w -t raw -A CHAPERONE-POD-EGRESS -d "$SERVICE_CIDR" -j RETURN
iptables -w -t raw -A CHAPERONE-POD-EGRESS -j DROP
iptables -w -t raw -I PREROUTING 1 -i "$BRIDGE" -j CHAPERONE-POD-EGRESS
# After DNAT: a packet from the bridge may be routed back onto the bridge (a pod endpoint) or be
# for the host (INPUT, not here), never out of another interface. This catches a Service whose
# EndpointSlice names an outside address and a Service IP with no rules (the host's default route
# would take it). In mangle, which kube-proxy leaves alone, so no ACCEPT of its can come first.
iptables -w -t mangle -N CHAPERONE-POD-FORWARD
iptables -w -t mangle -A CHAPERONE-POD-FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
iptables -w -t mangle -I FORWARD 1 -j CHAPERONE-POD-FORWARD
# Pods have only link-local IPv6; keep it on the link and the host.
ip6tables -w -t raw -N CHAPERONE-POD-EGRESS
ip6tables -w -t raw -A CHAPERONE-POD-EGRESS -d fe80::/10 -j RETURN
ip6tables -w -t raw -A CHAPERONE-POD-EGRESS -d ff02::/16 -j RETURN
ip6tables -w -t raw -A CHAPERONE-POD-EGRESS -m addrtype --dst-type LOCAL -j RETURN
ip6tables -w -t raw -A CHAPERONE-POD-EGRESS -j DROP
ip6tables -w -t raw -I PREROUTING 1 -i "$BRIDGE" -j CHAPERONE-POD-EGRESS
# In-cluster clients use KUBERNETES_SERVICE_HOST=10.96.0.1:443; without kube-proxy, one DNAT rule.
iptables -w -t nat -N CHAPERONE-SERVICES
iptables -w -t nat -A CHAPERONE-SERVICES -d "$API_SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$GATEWAY:$API_PORT"
iptables -w -t nat -I PREROUTING 1 -i "$BRIDGE" -j CHAPERONE-SERVICES

# --- PKI and kubeconfigs ------------------------------------------------------------------------
log "PKI and kubeconfigs in $S"
(
  cd "$PKI"
  umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=chaperone-local-cluster-ca" 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  issue() { # NAME SUBJECT [SANS]
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    {
      echo "basicConstraints=CA:FALSE"
      echo "keyUsage=digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=serverAuth,clientAuth"
      [ -z "${3:-}" ] || echo "subjectAltName=$3"
    } >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  issue apiserver "/CN=kube-apiserver" \
    "IP:$GATEWAY,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue admin "/O=system:masters/CN=chaperone-admin"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  issue controller-manager "/CN=system:kube-controller-manager"
  issue scheduler "/CN=system:kube-scheduler"
  issue node "/O=system:nodes/CN=system:node:$NODE_NAME"
  issue kube-proxy "/CN=system:kube-proxy"
)
kubeconfig() { # FILE CERT
  local k=(--kubeconfig="$1")
  "$BIN/kubectl" config "${k[@]}" set-cluster chaperone --server="https://$GATEWAY:$API_PORT" \
    --certificate-authority="$PKI/ca.crt" --embed-certs=true >/dev/null
  "$BIN/kubectl" config "${k[@]}" set-credentials "$2" --client-certificate="$PKI/$2.crt" \
    --client-key="$PKI/$2.key" --embed-certs=true >/dev/null
  "$BIN/kubectl" config "${k[@]}" set-context chaperone --cluster=chaperone --user="$2" >/dev/null
  "$BIN/kubectl" config "${k[@]}" use-context chaperone >/dev/null
  chmod 0600 "$1"
}
kubeconfig "$KUBECONFIG_ADMIN" admin
kubeconfig "$S/controller-manager.kubeconfig" controller-manager
kubeconfig "$S/scheduler.kubeconfig" scheduler
kubeconfig "$S/kubelet.kubeconfig" node
kubeconfig "$S/kube-proxy.kubeconfig" kube-proxy

# --- Processes ----------------------------------------------------------------------------------
start() { # NAME ARGS... — in its own session so it outlives this script; pid in RUN_DIR
  local name="$1"; shift
  setsid "$@" >>"$S/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$R/$name.pid"
}
wait_for() { # NAME SECONDS COMMAND...
  local name="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then
      tail -n 25 "$S/logs/$name.log" >&2 || true
      die "$name exited during start-up (log above, full log $S/logs/$name.log); run 'make cluster-down' to clean up"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 25 "$S/logs/$name.log" >&2 || true
      die "$name not ready after ${secs}s (log above, full log $S/logs/$name.log); run 'make cluster-down' to clean up"
    fi
    sleep 0.5
  done
}
render() { # TEMPLATE OUT
  sed -e "s|@STATE_DIR@|$S|g" -e "s|@RUN_DIR@|$R|g" -e "s|@BRIDGE@|$BRIDGE|g" \
    -e "s|@POD_CIDR@|$POD_CIDR|g" -e "s|@GATEWAY@|$GATEWAY|g" -e "s|@SERVICE_CIDR@|$SERVICE_CIDR|g" \
    -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" -e "s|@NODE_NAME@|$NODE_NAME|g" "$1" >"$2"
}

log "starting etcd and kube-apiserver"
start etcd "$BIN/etcd" --name=chaperone --data-dir="$S/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="chaperone=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level=warn
start kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address="$GATEWAY" --advertise-address="$GATEWAY" --secure-port="$API_PORT" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" --service-cluster-ip-range="$SERVICE_CIDR" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP --enable-aggregator-routing=true --profiling=false
wait_for kube-apiserver 120 kubectl_ get --raw /readyz

log "starting kube-controller-manager, kube-scheduler and containerd"
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$S/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$S/controller-manager.kubeconfig" --authorization-kubeconfig="$S/controller-manager.kubeconfig" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --use-service-account-credentials=true --leader-elect=false --bind-address=127.0.0.1 --profiling=false
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$S/scheduler.kubeconfig" \
  --authentication-kubeconfig="$S/scheduler.kubeconfig" --authorization-kubeconfig="$S/scheduler.kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --profiling=false

render "$here/cluster/containerd.toml" "$S/containerd.toml"
render "$here/cluster/cni.conflist" "$S/cni/10-chaperone.conflist"
# No image may ever be pulled: every registry request goes through a "proxy" on a closed loopback
# port, so an image that was not imported fails at once ("proxyconnect ... connection refused"),
# without even a DNS lookup. (Debian's containerd 1.6.20 ignored a catch-all _default/hosts.toml
# here: it looked the registry up in DNS.)
start containerd env HTTPS_PROXY=http://127.0.0.1:1 HTTP_PROXY=http://127.0.0.1:1 \
  https_proxy=http://127.0.0.1:1 http_proxy=http://127.0.0.1:1 NO_PROXY= no_proxy= \
  containerd --config "$S/containerd.toml"
wait_for containerd 60 ctr --address "$CTR_SOCK" version
import_images "${own_images[@]}" "$@"
# Read the whole list before matching: `ctr … | grep -q` under pipefail fails at random when grep
# exits at the first match and ctr, still writing the next line, dies of SIGPIPE — which is how
# "not in containerd after the import" was seen under load with the image present.
present="$(ctr --address "$CTR_SOCK" -n k8s.io images ls -q)" \
  || die "ctr could not list the images in containerd's k8s.io namespace; see $S/logs/containerd.log"
grep -qxF "$PAUSE_IMAGE" <<<"$present" \
  || die "$PAUSE_IMAGE is not in containerd after the import (images there: $(tr '\n' ' ' <<<"$present")); see $S/logs/containerd.log"

log "starting the kubelet"
render "$here/cluster/kubelet.yaml" "$S/kubelet.yaml"
start kubelet "$BIN/kubelet" --config="$S/kubelet.yaml" --kubeconfig="$S/kubelet.kubeconfig" \
  --root-dir="$S/kubelet" --cert-dir="$S/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$GATEWAY" --v=1
wait_for kubelet 120 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
# Service routing (user system:kube-proxy is bound to system:node-proxier by default RBAC).
log "starting kube-proxy"
render "$here/cluster/kube-proxy.yaml" "$S/kube-proxy.yaml"
start kube-proxy "$BIN/kube-proxy" --config="$S/kube-proxy.yaml" --v=1
wait_for kube-proxy 60 curl -fsS http://127.0.0.1:10256/healthz
# Pod creation needs the default ServiceAccount and kube-root-ca.crt, both made by KCM.
wait_for kube-controller-manager 60 kubectl_ -n default get serviceaccount/default configmap/kube-root-ca.crt

cat >"$S/cluster.json" <<JSON
{
  "kubeconfig": "$KUBECONFIG_ADMIN",
  "server": "https://$GATEWAY:$API_PORT",
  "nodeName": "$NODE_NAME",
  "gateway": "$GATEWAY",
  "bridge": "$BRIDGE",
  "podCidr": "$POD_CIDR",
  "serviceCidr": "$SERVICE_CIDR",
  "apiServiceIp": "$API_SERVICE_IP",
  "containerdSocket": "$CTR_SOCK",
  "binDir": "$BIN",
  "stateDir": "$S",
  "kubernetesVersion": "$("$BIN/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1)"
}
JSON
log "cluster up in $((SECONDS - t0))s"
summary
