#!/usr/bin/env bash
# hawser's admission path against the bound (BENCHMARKS.md, issue 12).
# Starts a private test bed (hawser's namespace cache reads it), then runs
# bench/ (hawser-bench): first the bound, a bare rustls + hyper server with
# a constant answer, then hawser's /mutate and /validate with each body in
# bench/bodies/. Each server is pinned to CPU 1, the load generator to
# CPU 0. Open loop over 16 keep-alive HTTP/1.1 connections over TLS:
# latency at a fixed rate, the highest rate with p99 <= 5 ms, CPU per
# request (from /proc/PID/stat) and RSS. Prints one table per repetition.
#
#   bash hack/bench-webhook.sh [BINARY...] [-- hawser-bench run flags...]
#
# With `-- --instructions N` it counts instructions per request under
# valgrind's callgrind instead of timing (repeatable on a noisy machine).
#
# BINARY defaults to this tree's release build; several (say, before and
# after a change) are measured one after the other in each repetition,
# against the same bound. `hawser-bench run --help` lists the flags (rate,
# lengths, sweep, repetitions).
#
# Not a test: it asserts nothing about speed and is never timed by CI
# (.ci/run only builds it). It does stop, naming the case, when a server
# answers a body wrongly, so no figure comes from a wrong answer.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HAWSER_CACHE/target}
HAWSER_TESTENV_DIR=${HAWSER_TESTENV_DIR:-$(mktemp -d /tmp/hawser-bench-webhook.XXXXXX)}
export HAWSER_TESTENV_DIR
STATE=$HAWSER_TESTENV_DIR
trap 'bash hack/testenv/down.sh >/dev/null 2>&1 || true' EXIT

bins=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  bins+=("$1")
  shift
done
[ "${1:-}" = -- ] && shift
if [ ${#bins[@]} -eq 0 ]; then
  log "building the release binary"
  cargo build --locked --quiet --release --bin hawser
  bins=("$CARGO_TARGET_DIR/release/hawser")
fi
log "building hawser-bench"
cargo build --locked --quiet --release --manifest-path bench/Cargo.toml
apt_install valgrind
[ "$(nproc)" -ge 2 ] || die "the benchmark pins the load and the server to two different CPUs; this machine has $(nproc)"

bash hack/testenv/up.sh
# shellcheck disable=SC1091
. "$STATE/env"
# The Deployment and Service bodies are in namespace bench: it must be in
# hawser's cache, or each admission would wait --namespace-wait for it.
kubectl create namespace bench >/dev/null
"${bins[0]}" certs --ip 127.0.0.1 --out "$STATE/bench-certs" >/dev/null
hawsers=()
for bin in "${bins[@]}"; do
  hawsers+=(--hawser "$bin")
done
log "measuring ${bins[*]} (load on CPU 0, servers on CPU 1)"
taskset -c 0 "$CARGO_TARGET_DIR/release/hawser-bench" run "${hawsers[@]}" \
  --cert-dir "$STATE/bench-certs" --bodies bench/bodies "$@"
