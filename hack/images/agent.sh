#!/bin/sh
# chaperone-agent — the demo agent of the local cluster and the e2e suite: an unchanged PostgreSQL
# client that knows nothing about Chaperone. It runs psql against $PGHOST:$PGPORT (set by the
# injection webhook to the sidecar's listener), one statement per argument (or $AGENT_SQL when there
# are none), and prints what psql prints. Then it stays up (so the pod, its logs and its JIT role
# can be inspected) unless AGENT_EXIT=1, in which case it exits with the worst psql status.
#
#   env: PGHOST PGPORT PGDATABASE PGUSER (libpq's own variables; the sidecar ignores the password)
#        AGENT_SQL            statement when no argument is given
#        AGENT_CONNECT_WAIT   seconds to retry while the listener is not up yet (default 30)
#        AGENT_EXIT=1         exit after the statements instead of sleeping
set -u

: "${PGHOST:?PGHOST is not set: is the pod annotated for injection?}"
: "${PGPORT:?PGPORT is not set: is the pod annotated for injection?}"
wait_s="${AGENT_CONNECT_WAIT:-30}"

if [ "$#" -eq 0 ]; then
  [ -n "${AGENT_SQL:-}" ] || { echo "chaperone-agent: give statements as arguments or in AGENT_SQL" >&2; exit 2; }
  set -- "$AGENT_SQL"
fi

worst=0
for sql in "$@"; do
  tries=0
  while :; do
    echo "chaperone-agent: psql -c $sql"
    # -X: no ~/.psqlrc; ON_ERROR_STOP makes a refused statement exit 1 with psql's SQLSTATE message.
    psql -X -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$sql"
    status=$?
    # psql exits 2 when it could not connect: the sidecar may still be starting.
    if [ "$status" -eq 2 ] && [ "$tries" -lt "$wait_s" ]; then
      tries=$((tries + 1))
      sleep 1
      continue
    fi
    break
  done
  echo "chaperone-agent: exit status $status"
  [ "$status" -gt "$worst" ] && worst=$status
done

[ "${AGENT_EXIT:-0}" = "1" ] && exit "$worst"
echo "chaperone-agent: done; sleeping until stopped"
# PID 1 gets no default signal handlers: exit on TERM/INT ourselves, and sleep in the background so
# the trap runs at once.
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $!
done
