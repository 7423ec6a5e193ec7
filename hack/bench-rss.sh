#!/usr/bin/env bash
# hawser's memory with many watched objects (BENCHMARKS.md, issue 12):
# N plain Services (headless, no annotations) in one namespace of a private
# test bed, then the release binary with the vpce, stack and namespace
# controllers; once every controller's cache has synced and 10 s have
# passed, prints VmRSS and VmHWM (peak) from /proc.
#
#   bash hack/bench-rss.sh [N [BINARY...]]
#
# N defaults to 10000; BINARY to this tree's release build. With
# BENCH_APPLY=1 the Services are made by `kubectl apply`, so each also
# carries kubectl's last-applied-configuration annotation. Several
# binaries (say, before and after a change) are measured one after the
# other against the same objects, so their figures compare.
#
# Not a test: it asserts nothing and is never run by CI.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
n=${1:-10000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HAWSER_CACHE/target}
HAWSER_TESTENV_DIR=${HAWSER_TESTENV_DIR:-$(mktemp -d /tmp/hawser-bench-rss.XXXXXX)}
export HAWSER_TESTENV_DIR
STATE=$HAWSER_TESTENV_DIR
hawser_pid=
cleanup() {
  [ -n "$hawser_pid" ] && kill "$hawser_pid" 2>/dev/null
  bash hack/testenv/down.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "building the release binary"
cargo build --locked --quiet --release --bin hawser
bash hack/testenv/up.sh
# shellcheck disable=SC1091
. "$STATE/env"

log "creating $n plain Services in namespace bench-rss"
kubectl create namespace bench-rss >/dev/null
python3 - "$n" <<'PY' >"$STATE/services.py.out"
import json, sys
n = int(sys.argv[1])
for start in range(0, n, 500):
    items = [{"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": f"plain-{i:05d}", "namespace": "bench-rss", "labels": {"app": "bench"}},
              "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}],
                       "selector": {"app": "bench"}}}
             for i in range(start, min(start + 500, n))]
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
PY
make=create
[ "${BENCH_APPLY:-}" = 1 ] && make=apply
while read -r chunk; do
  kubectl "$make" -f - <<<"$chunk" >/dev/null
done <"$STATE/services.py.out"
log "$(kubectl get services -n bench-rss --no-headers | wc -l) Services in bench-rss"

measure() { # measure BINARY
  local bin=$1 admin log="$STATE/logs/hawser-$RANDOM.log"
  admin=$(free_port)
  "$bin" run --webhook-addr "127.0.0.1:$(free_port)" --admin-addr "127.0.0.1:$admin" \
    --tls-cert-dir "$STATE/certs" --controllers vpce,stack,namespace --cluster-name bench \
    --namespace default --log-format json >"$log" 2>&1 &
  hawser_pid=$!
  synced() { [ "$(grep -c '"cache synced"' "$log")" -ge 4 ]; }
  wait_until 120 "every controller's cache" synced
  sleep 10
  awk -v n="$n" -v bin="$bin" '/^VmRSS|^VmHWM/ {kib[$1]=$2}
    END {printf "%s: objects=%d VmRSS=%.1f MiB VmHWM=%.1f MiB\n", bin, n, kib["VmRSS:"]/1024, kib["VmHWM:"]/1024}' \
    "/proc/$hawser_pid/status"
  kill "$hawser_pid"
  wait "$hawser_pid" 2>/dev/null || true
  hawser_pid=
}
shift || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$CARGO_TARGET_DIR/release/hawser")
"${bins[0]}" certs --ip 127.0.0.1 --out "$STATE/certs" >/dev/null
for bin in "${bins[@]}"; do
  measure "$bin"
done
