#!/usr/bin/env bash
# Exits 0 when every process up.sh recorded is alive and the apiserver answers.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
repo=$(cd "$here/../.." && pwd)
STATE=${HAWSER_TESTENV_DIR:-$repo/.testenv}
[ -f "$STATE/env" ] || { echo "no test bed in $STATE"; exit 1; }
ok=0
for name in etcd kube-apiserver kube-controller-manager moto; do
  pid=$(cat "$STATE/pids/$name.pid" 2>/dev/null || echo 0)
  if kill -0 "$pid" 2>/dev/null; then echo "$name: running ($pid)"; else echo "$name: not running"; ok=1; fi
done
"$KUBE_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz >/dev/null 2>&1 || { echo "apiserver: not ready"; ok=1; }
exit $ok
