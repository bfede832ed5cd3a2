#!/usr/bin/env bash
# Prints the host state that hack/cluster-up.sh may change, normalised for diffing, so that
# `cluster-down` can be checked to restore it:
#
#   hack/cluster/host-state.sh >before; make cluster-up; make cluster-down
#   hack/cluster/host-state.sh >after; diff before after
#
# Covers processes, mounts and their propagation, links, addresses, routes, iptables/ip6tables,
# every sysctl, cgroups, and the directories the cluster or its components write to.
set -uo pipefail
section() { printf '\n## %s\n' "$1"; }
section processes
ps -eo comm= | grep -E '^(etcd|kube-|kubelet|containerd|runc|pause)' | sort | uniq -c
section mounts
findmnt -rn -o TARGET,FSTYPE,PROPAGATION | sort
section links
ip -o link show | sed 's/^[0-9]*: //; s/ link\/.*//' | sort
section addresses
ip -o addr show | awk '{print $2, $3, $4}' | sort
section routes
ip route show table all | sort
section iptables
iptables-save 2>/dev/null | grep -vE '^#|^:' | sort
iptables-save 2>/dev/null | grep -E '^:' | cut -d' ' -f1 | sort
section ip6tables
ip6tables-save 2>/dev/null | grep -vE '^#|^:' | sort
ip6tables-save 2>/dev/null | grep -E '^:' | cut -d' ' -f1 | sort
section nftables
nft list tables 2>/dev/null | sort
section sysctls
# Counters and random values change on their own.
sysctl -a 2>/dev/null | grep -vE '^(fs\.(dentry|inode|file-nr|aio-nr|quota)|kernel\.(random|ns_last_pid|pty\.nr|sched_domain)|net\.netfilter\.nf_conntrack_count|vm\.(stat|nr_)|dev\.cdrom|fs\.binfmt)' | sort
section cgroups
find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d 2>/dev/null | grep -v '/process_api' | sort
section paths
for d in /etc/cni /etc/containerd /etc/kubernetes /var/lib/kubelet /var/lib/cni /var/lib/containerd \
  /var/lib/chaperone-cluster /var/log/pods /var/log/containers /run/containerd /run/chaperone-cluster \
  /opt/cni /run/netns /var/run/netns; do
  [ -e "$d" ] && printf '%s: %s\n' "$d" "$(find "$d" -maxdepth 2 | wc -l)" || printf '%s: absent\n' "$d"
done
