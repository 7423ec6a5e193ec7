#!/usr/bin/env bash
# Restarts one process of a running test bed, as an outage would:
#   restart.sh NAME [DOWN_SECONDS]
# stops NAME (kube-apiserver, moto, etcd or kube-controller-manager: TERM,
# then KILL after 5 s), keeps it down DOWN_SECONDS (default 0), starts it
# again with the command line up.sh recorded, and waits until it serves.
# moto keeps its state in memory, so a restarted moto is empty. Used by
# tests/e2e_outages.rs, which hack/test.sh runs alone after the other tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
repo=$(cd "$here/../.." && pwd)
STATE=${HAWSER_TESTENV_DIR:-$repo/.testenv}
name=${1:?usage: restart.sh NAME [DOWN_SECONDS]}
down=${2:-0}
[ -f "$STATE/cmd/$name" ] || die "no recorded command for $name in $STATE/cmd"
pid=$(cat "$STATE/pids/$name.pid" 2>/dev/null || echo 0)
alive() { # running, and not a zombie waiting to be reaped
  kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}
if alive "$pid"; then
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  # Wait until it is gone, so its port is free again.
  gone() { ! alive "$pid"; }
  wait_until 30 "$name ($pid) to exit" gone
fi
log "stopped $name; down for ${down}s"
sleep "$down"
# The recorded words, quoted by printf %q, back into "$@"; started the way
# up.sh starts it, so $! is the process itself.
eval "set -- $(cat "$STATE/cmd/$name")"
"$@" >>"$STATE/logs/$name.log" 2>&1 &
echo $! >"$STATE/pids/$name.pid"
# shellcheck disable=SC1091
. "$STATE/env"
pki=$STATE/pki
ready() {
  case $name in
    kube-apiserver) curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
      "$HAWSER_TESTENV_APISERVER/readyz" ;;
    moto) curl -sf "$HAWSER_TESTENV_MOTO/moto-api/" ;;
    *) kill -0 "$(cat "$STATE/pids/$name.pid")" ;;
  esac
}
wait_until 90 "$name to serve again" ready
log "restarted $name ($(cat "$STATE/pids/$name.pid"))"
