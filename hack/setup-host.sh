#!/usr/bin/env bash
# Installs the machine-level prerequisites of the test harness and the demo, idempotently:
# Debian packages (openssh-server, PostgreSQL 15 server and pgbench, pgbouncer, chromium, openssl) and,
# when running as root, the unprivileged account that PostgreSQL and SSH test logins run as.
# Fast when everything is already there (no apt-get update).
set -euo pipefail
log() { printf '[setup-host] %s\n' "$*" >&2; }

need_pkgs=()
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
command -v ssh >/dev/null || need_pkgs+=(openssh-client)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v psql >/dev/null || need_pkgs+=(postgresql-client-15)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql-15)
command -v getent >/dev/null || need_pkgs+=(libc-bin)
command -v pgbench >/dev/null || need_pkgs+=(postgresql-15)
[ -x /usr/sbin/pgbouncer ] || need_pkgs+=(pgbouncer) # the benchmark baseline
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium) # the auditor UI browser test (driven by playwright-core)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static) # the demo agent image's shell (make images)
# The local cluster's static pause binary (hack/images/cluster-images.ts).
{ command -v gcc >/dev/null && [ -n "$(find /usr/lib -name libc.a -print -quit 2>/dev/null)" ]; } || need_pkgs+=(gcc libc6-dev)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing packages: ${need_pkgs[*]} — install them with: sudo apt-get install -y ${need_pkgs[*]}"
    exit 1
  fi
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [ "$(id -u)" -eq 0 ]; then
  account="${CHAPERONE_TEST_USER:-chaperone}"
  if ! getent passwd "$account" >/dev/null; then
    log "creating unprivileged test account '$account'"
    useradd --create-home --shell /bin/bash "$account"
  fi
  # sshd without PAM refuses accounts whose password field is locked ('!'); '*' means
  # "no password login" without counting as locked, so certificate logins work.
  usermod -p '*' "$account"
  # sshd's privilege-separation directory (normally made by its init script).
  mkdir -p /run/sshd && chmod 0755 /run/sshd
fi
log "host ready"
