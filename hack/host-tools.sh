# shellcheck shell=bash
# Reads hack/host-tools.txt, the one list of host programs the project runs (see its header).
# Sourced by hack/setup-host.sh, hack/cluster-up.sh and hack/doctor.sh.

HOST_TOOLS_FILE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/host-tools.txt"

# host_tool_present CHECK — a command on PATH, an absolute path, a glob, or static:PATH.
host_tool_present() {
  local check="$1"
  case "$check" in
    static:*) [ -x "${check#static:}" ] && ! ldd "${check#static:}" >/dev/null 2>&1 ;;
    /*'*'*) compgen -G "$check" >/dev/null ;;
    /*) [ -e "$check" ] ;;
    *) command -v "$check" >/dev/null ;;
  esac
}

# host_tools_lines SCOPE... — "NAME PACKAGE SCOPE CHECK" for every entry of those scopes.
host_tools_lines() {
  awk -v scopes=" $* " '
    { sub(/(^|[ \t])#.*$/, "") }
    NF >= 4 && index(scopes, " " $3 " ") { print $1, $2, $3, $4 }
  ' "$HOST_TOOLS_FILE"
}

# host_tools_missing SCOPE... — the Debian packages that would bring what is missing, one a line.
# Entries whose package is `-` (not from apt) are the caller's to check.
host_tools_missing() {
  local name pkg scope check
  while read -r name pkg scope check; do
    [ "$pkg" = - ] && continue
    host_tool_present "$check" || echo "$pkg"
  done < <(host_tools_lines "$@") | sort -u
}

# host_tools_install TAG SCOPE... — installs the missing packages of those scopes with apt-get
# (root), or fails with the exact apt-get line (not root). TAG prefixes the log lines.
host_tools_install() {
  local tag="$1"; shift
  local -a pkgs
  mapfile -t pkgs < <(host_tools_missing "$@")
  [ ${#pkgs[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    printf '[%s] error: missing Debian packages: %s\n  install them with: sudo apt-get install -y %s\n' \
      "$tag" "${pkgs[*]}" "${pkgs[*]}" >&2
    return 1
  fi
  printf '[%s] installing Debian packages: %s\n' "$tag" "${pkgs[*]}" >&2
  apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; then
    printf '[%s] error: could not install them; try: apt-get install -y %s\n' "$tag" "${pkgs[*]}" >&2
    return 1
  fi
  mapfile -t pkgs < <(host_tools_missing "$@")
  if [ ${#pkgs[@]} -gt 0 ]; then
    printf '[%s] error: still missing after apt-get install: %s (see hack/host-tools.txt for what each must provide)\n' \
      "$tag" "${pkgs[*]}" >&2
    return 1
  fi
}
