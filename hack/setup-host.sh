#!/usr/bin/env bash
# Installs the machine-level prerequisites of the test harness and the demo, idempotently: the
# Debian packages of hack/host-tools.txt's `host` scope (sshd, PostgreSQL, pgbouncer, chromium, …)
# and, when running as root, the unprivileged account that PostgreSQL and SSH test logins run as.
# Fast when everything is already there (no apt-get update).
set -euo pipefail
log() { printf '[setup-host] %s\n' "$*" >&2; }

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=host-tools.sh
source "$here/host-tools.sh"
# Every package is named in hack/host-tools.txt (scope host), the list `make doctor` prints.
host_tools_install setup-host host

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
