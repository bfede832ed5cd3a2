#!/usr/bin/env bash
# Stops the local cluster started by hack/cluster-up.sh and undoes everything it changed on the
# host: its processes (and the containers they started), mounts, network namespaces, the bridge,
# the firewall rules, the sysctls the kubelet or the bridge plugin set, cgroups, and its state
# directories. Safe to run at any time, also after a failed cluster-up or when nothing is up.
#
#   hack/cluster-down.sh
#   hack/cluster/host-state.sh >before; make cluster-up; make cluster-down; hack/cluster/host-state.sh | diff before -
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster/cluster.env
source "$here/cluster/cluster.env"
S="$STATE_DIR" R="$RUN_DIR"
CTR_SOCK="$R/containerd/containerd.sock"

log() { printf '[cluster-down] %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "error: must run as root: sudo make cluster-down"; exit 1; }
t0=$SECONDS

# Values recorded by cluster-up before it changed anything (absent if it never got that far).
if [ -f "$S/host-state.env" ]; then
  # shellcheck disable=SC1091
  source "$S/host-state.env"
fi

pid_of() { [ -f "$R/$1.pid" ] && cat "$R/$1.pid"; }
running() { # PID — exists and is not a zombie (an orphan's parent may be slow to reap it)
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$st" ] && [ "$st" != Z ]
}
stop() { # NAME... — TERM all, then KILL whatever still runs after 15 s; only pids cluster-up recorded
  local name pid t=$SECONDS
  for name in "$@"; do pid="$(pid_of "$name")" && kill -TERM "$pid" 2>/dev/null; done
  for name in "$@"; do
    pid="$(pid_of "$name")" || continue
    while running "$pid" && [ $((SECONDS - t)) -lt 15 ]; do sleep 0.2; done
    if running "$pid"; then log "$name ($pid) did not stop, killing it"; kill -KILL "$pid" 2>/dev/null; sleep 0.5; fi
    rm -f "$R/$name.pid"
  done
  [ $((SECONDS - t)) -lt 3 ] || log "$* took $((SECONDS - t))s to stop"
}

# 1. The kubelet first, so it restarts nothing; then every container and sandbox through containerd.
stop kubelet
if [ -S "$CTR_SOCK" ] && running "$(pid_of containerd)"; then
  ctr_() { ctr --address "$CTR_SOCK" -n k8s.io "$@"; }
  tasks="$(ctr_ tasks ls -q 2>/dev/null)"
  if [ -n "$tasks" ]; then
    log "stopping $(echo "$tasks" | wc -l) containers"
    for t in $tasks; do ctr_ tasks kill -s KILL "$t" >/dev/null 2>&1; done
    # The CRI plugin deletes a task once it sees it exit; delete any it has not after a while.
    for _ in $(seq 25); do [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && break; sleep 0.2; done
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1; done
  fi
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1; done
fi
stop containerd
# Shims whose containerd is gone (they outlive it by design): only those of this cluster, found
# by the containerd address they were started with.
for p in /proc/[0-9]*; do
  if grep -q "containerd-shim.* -address $CTR_SOCK" <<<"$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")"; then
    log "killing leftover shim ${p#/proc/}"; kill -KILL "${p#/proc/}" 2>/dev/null
  fi
done
# Pod processes left behind when containerd or its shims died first: whatever is still in the
# kubelet's pod cgroups belongs to this cluster.
for procs in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$procs" ] || continue
  left="$(find "$procs" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)"
  if [ -n "$left" ]; then log "killing leftover pod processes: $(echo "$left" | wc -l)"; kill -KILL $left 2>/dev/null; sleep 0.5; fi
done
stop kube-proxy kube-scheduler kube-controller-manager kube-apiserver
stop etcd

# 2. Mounts: kubelet volumes, its root-dir bind mount, containerd's rootfs and shm mounts, and the
#    pods' network namespaces (containerd never got to delete them when the kubelet is gone).
mapfile -t mounts < <(findmnt -rn -o TARGET | grep -E "^(($S|$R|/var/lib/kubelet)(/|$)|/run/netns/cni-)" | sort -r)
for m in "${mounts[@]}"; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
done
[ ${#mounts[@]} -eq 0 ] || log "unmounted ${#mounts[@]} mounts"
rm -f /run/netns/cni-* 2>/dev/null
[ "${EXISTED_run_netns:-1}" = 1 ] || rmdir /run/netns 2>/dev/null

# 3. Network: bridge (its veths go with the namespaces), firewall rules.
if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE" && log "removed bridge $BRIDGE"; fi
unhook() { # CMD TABLE CHAIN JUMP-RULE...
  local cmd="$1" table="$2" chain="$3"; shift 3
  while "$cmd" -w -t "$table" -D "$@" 2>/dev/null; do :; done
  if "$cmd" -w -t "$table" -L "$chain" -n >/dev/null 2>&1; then
    "$cmd" -w -t "$table" -F "$chain" && "$cmd" -w -t "$table" -X "$chain" && log "removed $cmd $table/$chain"
  fi
}
if command -v iptables >/dev/null; then
  unhook iptables raw CHAPERONE-POD-EGRESS PREROUTING -i "$BRIDGE" -j CHAPERONE-POD-EGRESS
  unhook ip6tables raw CHAPERONE-POD-EGRESS PREROUTING -i "$BRIDGE" -j CHAPERONE-POD-EGRESS
  unhook iptables nat CHAPERONE-SERVICES PREROUTING -i "$BRIDGE" -j CHAPERONE-SERVICES
  unhook iptables mangle CHAPERONE-POD-FORWARD FORWARD -j CHAPERONE-POD-FORWARD
  # With the nft backend, using a table creates it: drop the ones that did not exist before and
  # are empty again (with the legacy backend tables always exist).
  if grep -q nf_tables <<<"$(iptables --version)" && command -v nft >/dev/null; then
    for t in "ip raw" "ip6 raw" "ip nat" "ip mangle"; do
      case " ${NFT_TABLES_BEFORE-ip raw,ip6 raw,ip nat,ip mangle}," in *" $t,"* | *",$t,"*) continue ;; esac
      save=iptables-save; [ "${t%% *}" = ip6 ] && save=ip6tables-save
      # shellcheck disable=SC2086 # "$t" is "FAMILY NAME", two words for nft
      nft list table $t >/dev/null 2>&1 || continue
      # Read the rules first: with `save | grep -q` under pipefail, a SIGPIPE of save would read
      # as "no rules" and delete a table that still has some.
      rules="$("$save" -t "${t#* }" 2>/dev/null)" || continue
      if ! grep -q '^-A' <<<"$rules"; then nft delete table $t && log "removed empty nft table $t"; fi
    done
  fi
fi

# kube-proxy (nftables mode) keeps all its rules in tables of its own.
if command -v nft >/dev/null; then
  for t in "ip kube-proxy" "ip6 kube-proxy"; do
    # shellcheck disable=SC2086 # "$t" is "FAMILY NAME", two words for nft
    if nft list table $t >/dev/null 2>&1; then nft delete table $t && log "removed nft table $t"; fi
  done
fi

# 4. Sysctls: the kubelet sets vm.overcommit_memory, kernel.panic* and kernel.keys.*, the bridge
#    plugin net.ipv4.ip_forward. Put back what cluster-up recorded.
if [ -f "$S/sysctl.saved" ]; then
  while IFS='=' read -r key want; do
    if [ "$(sysctl -n "$key" 2>/dev/null)" != "$want" ]; then
      sysctl -qw "$key=$want" && log "restored $key=$want"
    fi
  done <"$S/sysctl.saved"
fi

# 5. cgroups the kubelet and runc created (kubepods in each hierarchy), deepest first.
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$d" ] || continue
  grep -qxF "EXISTED_CGROUP=$d" "$S/host-state.env" 2>/dev/null && continue
  find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$d" ] && log "warning: could not remove cgroup $d (processes still in it?)"
done

# 6. Files: paths the components write outside our directories, when they did not exist before.
[ "${EXISTED_dev_kmsg:-1}" = 1 ] || { [ -L /dev/kmsg ] && rm -f /dev/kmsg; }
[ "${EXISTED_var_lib_kubelet:-1}" = 1 ] || rm -rf /var/lib/kubelet
[ "${EXISTED_var_log_containers:-1}" = 1 ] || rm -rf /var/log/containers
[ "${EXISTED_var_log_pods:-1}" = 1 ] || rm -rf /var/log/pods
# libcni's cache of this network's results; then the directories if they are empty (another
# containerd on the machine may use them).
# Also the shim sockets (containerd 1.6 puts them in /run/containerd/s whatever its state dir;
# named sha256(ADDRESS/NAMESPACE/SANDBOX-ID)) that a killed shim could not remove.
for d in "$S"/containerd/io.containerd.grpc.v1.cri/sandboxes/*; do
  [ -d "$d" ] || continue
  rm -f /var/lib/cni/results/*-"${d##*/}"-* 2>/dev/null
  sock="$(printf '%s' "$CTR_SOCK/k8s.io/${d##*/}" | sha256sum | cut -d' ' -f1)"
  rm -f "/run/containerd/s/$sock"
done
[ "${EXISTED_var_lib_cni:-1}" = 1 ] || find /var/lib/cni -depth -type d -empty -delete 2>/dev/null
[ "${EXISTED_run_containerd:-1}" = 1 ] || find /run/containerd -depth -type d -empty -delete 2>/dev/null
if [ -d "$S" ] || [ -d "$R" ]; then
  rm -rf "$S" "$R" || log "warning: could not remove $S / $R completely (still mounted?)"
  log "removed $S and $R"
fi
log "down in $((SECONDS - t0))s"
