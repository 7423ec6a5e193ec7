#!/usr/bin/env bash
# Stops what up.sh (and hack/up.sh) started, by the PIDs recorded in the
# state directory: TERM, then KILL after a few seconds.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
repo=$(cd "$here/../.." && pwd)
STATE=${HAWSER_TESTENV_DIR:-$repo/.testenv}
[ -d "$STATE/pids" ] || exit 0
for f in "$STATE"/pids/*.pid; do
  [ -e "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    log "stopped $(basename "$f" .pid) ($pid)"
  fi
  rm -f "$f"
done
