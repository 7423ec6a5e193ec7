#!/usr/bin/env bash
# The vpce controller with N annotated Services at once (BENCHMARKS.md,
# issue 12). For each N, on a private test bed with a VPC and two subnets
# in its moto: starts the release binary with --controllers vpce, applies N
# Services annotated vpce.hawser.io/service-name in one `kubectl apply`,
# and reports:
#   - apply -> Available: p50, p99 and when the last one was (polled every
#     250 ms, so each figure is late by up to that much);
#   - delete of all -> none left (polled every 300 ms);
#   - apply -> hawser's first AWS request about each Service: p50, p99;
#   - AWS calls per object, create and delete (hawser_aws_api_calls_total);
#   - hawser's peak RSS (VmHWM).
#
#   bash hack/bench-controllers.sh [N...]        # default: 20 200
#   BENCH_EC2_RATES=1 bash hack/bench-controllers.sh 200
#   BENCH_REGIONS=5 bash hack/bench-controllers.sh 1000   # spread over regions
#
# hawser talks to moto through `hawser-bench ec2-rates` (bench/), which
# notes each Service's first request. By default it refuses nothing, and
# the times are hawser's, the apiserver's and moto's. With
# BENCH_EC2_RATES=1 it throttles EC2 with AWS's documented token buckets
# (bench/src/ec2_rates.rs), and the script also reports the requests
# refused and the bucket-limited minimum time of the create: the least
# time in which the calls hawser made could have been let through.
#
# Not a test: it asserts nothing and is never run by CI.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HAWSER_CACHE/target}
HAWSER_TESTENV_DIR=${HAWSER_TESTENV_DIR:-$(mktemp -d /tmp/hawser-bench-controllers.XXXXXX)}
export HAWSER_TESTENV_DIR
STATE=$HAWSER_TESTENV_DIR
hawser_pid=
proxy_pid=
cleanup() {
  [ -n "$hawser_pid" ] && kill "$hawser_pid" 2>/dev/null || true
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  bash hack/testenv/down.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(20 200)

log "building the release binaries"
cargo build --locked --quiet --release --bin hawser
cargo build --locked --quiet --release --manifest-path bench/Cargo.toml
bin=$CARGO_TARGET_DIR/release/hawser
bench=$CARGO_TARGET_DIR/release/hawser-bench
bash hack/testenv/up.sh
# shellcheck disable=SC1091
. "$STATE/env"
# A VPC with two subnets in each of BENCH_REGIONS regions (default 1: the
# test bed's own). moto keeps one store per region and answers a describe
# by filtering over all of its region's resources, so its calls cost more
# as a region fills up; spread over regions, N = 1,000 stays within what
# it can answer (BENCHMARKS.md).
nets=$(BENCH_REGIONS=${BENCH_REGIONS:-1} "$MOTO_VENV/bin/python" - <<'PY'
import os
import boto3
regions = [os.environ.get("AWS_REGION", "us-west-2"), "us-east-1", "eu-west-1",
           "eu-central-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1", "ca-central-1"]
for region in regions[:int(os.environ["BENCH_REGIONS"])]:
    ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24")["Subnet"]["SubnetId"]
               for i in (1, 2)]
    print(f"{region}:{vpc}:{','.join(subnets)}", end=" ")
PY
)
IFS=: read -r _ vpc subnets <<<"${nets%% *}"
export BENCH_NETS=$nets
"$bin" certs --ip 127.0.0.1 --out "$STATE/bench-certs" >/dev/null

calls() { # the sum of hawser_aws_api_calls_total
  curl -sf "http://127.0.0.1:$admin/metrics" |
    awk '/^hawser_aws_api_calls_total/ {s += $NF} END {print s + 0}'
}

for n in "${sizes[@]}"; do
  ns=bench-vpce-$n
  kubectl create namespace "$ns" >/dev/null
  proxy=$(free_port)
  limits=--unlimited
  [ "${BENCH_EC2_RATES:-0}" = 1 ] && limits=
  # shellcheck disable=SC2086
  "$bench" ec2-rates --listen "127.0.0.1:$proxy" --upstream "${AWS_ENDPOINT_URL#http://}" $limits \
    >"$STATE/logs/ec2-rates-$n.log" 2>&1 &
  proxy_pid=$!
  proxy_up() { curl -sf "http://127.0.0.1:$proxy/_stats" >/dev/null; }
  wait_until 10 "the ec2-rates proxy" proxy_up
  admin=$(free_port)
  log_file="$STATE/logs/hawser-bench-$n.log"
  HAWSER_AWS_ENDPOINT_URL=http://127.0.0.1:$proxy "$bin" run --webhook-addr "127.0.0.1:$(free_port)" --admin-addr "127.0.0.1:$admin" \
    --tls-cert-dir "$STATE/bench-certs" --controllers vpce --cluster-name bench \
    --namespace default --default-vpc-id "$vpc" --default-subnet-ids "$subnets" \
    --resync-period 1h --log-format json >"$log_file" 2>&1 &
  hawser_pid=$!
  # The vpce controller logs it once its watch has listed everything.
  synced() { grep -q '"cache synced"' "$log_file"; }
  wait_until 120 "the vpce controller's cache" synced
  before=$(calls)
  python3 - "$n" "$ns" "$proxy" <<'PY'
import json, subprocess, sys, time, urllib.request
n, ns, proxy = int(sys.argv[1]), sys.argv[2], sys.argv[3]
import os
nets = [net.split(":") for net in os.environ["BENCH_NETS"].split()]
def annotations(i):
    if len(nets) == 1:  # the flags' defaults: the test bed's region
        return {"vpce.hawser.io/service-name": f"com.amazonaws.{nets[0][0]}.s3"}
    region, vpc, subnets = nets[i % len(nets)]
    return {"vpce.hawser.io/service-name": f"com.amazonaws.{region}.s3",
            "aws.hawser.io/region": region, "vpce.hawser.io/vpc-id": vpc,
            "vpce.hawser.io/subnet-ids": subnets}
items = [{"apiVersion": "v1", "kind": "Service",
          "metadata": {"name": f"svc-{i:04d}", "namespace": ns, "annotations": annotations(i)},
          "spec": {"ports": [{"port": 443}]}} for i in range(n)]
manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
start = time.monotonic()
applied_at = time.time()
subprocess.run(["kubectl", "apply", "-f", "-"], input=manifest.encode(), check=True,
               stdout=subprocess.DEVNULL)
done = {}
deadline = start + 1800
while len(done) < n:
    if time.monotonic() > deadline:
        sys.exit(f"only {len(done)} of {n} Available after 30 min")
    out = subprocess.run(["kubectl", "get", "services", "-n", ns, "-o", "json"],
                         check=True, capture_output=True).stdout
    now = time.monotonic() - start
    for item in json.loads(out)["items"]:
        name = item["metadata"]["name"]
        state = item["metadata"].get("annotations", {}).get("vpce.hawser.io/state")
        if state == "Available" and name not in done:
            done[name] = now
        if state == "Failed":
            sys.exit(f"{name} Failed")
    time.sleep(0.25)
times = sorted(done.values())
p = lambda q: times[max(0, -(-int(q * 1000) * n // 1000) - 1)]
print(f"N={n}: apply -> Available p50 {p(0.5):.2f} s, p99 {p(0.99):.2f} s, all {times[-1]:.2f} s")
stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{proxy}/_stats"))
firsts = sorted(t - applied_at for k, t in stats["first_seen"].items()
                if k.startswith(f"Service/{ns}/"))
assert len(firsts) == n, f"first requests seen for {len(firsts)} of {n} Services"
times = firsts
print(f"N={n}: apply -> first AWS request p50 {p(0.5):.2f} s, p99 {p(0.99):.2f} s")
throttled = sum(stats["throttled"].values())
if throttled or stats["minimum_seconds"] > 0:
    worst = max(done.values())
    print(f"N={n}: at EC2's rates: {throttled} requests refused {stats['throttled']}; "
          f"let through {stats['passed']}; bucket-limited minimum {stats['minimum_seconds']:.1f} s; "
          f"all Available after {worst:.1f} s = {100 * worst / max(stats['minimum_seconds'], 1e-9):.0f} % of it")
PY
  created=$(calls)
  awk -v n="$n" -v b="$before" -v c="$created" \
    'BEGIN {printf "N=%d: AWS calls per object, create: %.1f\n", n, (c - b) / n}'
  awk -v n="$n" '/^VmHWM/ {printf "N=%d: hawser peak RSS while creating %.1f MiB\n", n, $2 / 1024}' "/proc/$hawser_pid/status"
  start=$(date +%s.%N)
  kubectl delete services --all -n "$ns" --wait=false >/dev/null
  # The Services left; a failed look counts as all of them.
  left() {
    local out
    out=$(kubectl get services -n "$ns" -o name 2>/dev/null) || { echo "$n"; return; }
    [ -z "$out" ] && echo 0 || wc -l <<<"$out"
  }
  # BENCH_DELETE_WAIT (s, default 1800) bounds the wait; what is left then
  # is reported instead of the time.
  deadline=$(($(date +%s) + ${BENCH_DELETE_WAIT:-1800}))
  while [ "$(left)" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.3; done
  deleted=$(calls)
  remaining=$(left)
  if [ "$remaining" -eq 0 ]; then
    awk -v n="$n" -v s="$start" -v e="$(date +%s.%N)" -v c="$created" -v d="$deleted" \
      'BEGIN {printf "N=%d: delete -> none left %.2f s (polled every 300 ms); AWS calls per object, delete: %.1f\n", n, e - s, (d - c) / n}'
  else
    echo "N=$n: delete: $remaining of $n Services still there after ${BENCH_DELETE_WAIT:-1800} s"
  fi
  awk -v n="$n" '/^VmHWM/ {printf "N=%d: hawser peak RSS %.1f MiB\n", n, $2 / 1024}' "/proc/$hawser_pid/status"
  kill "$hawser_pid"
  wait "$hawser_pid" 2>/dev/null || true
  hawser_pid=
  curl -sf "http://127.0.0.1:$proxy/_stats" |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print("N=%s: requests refused over the whole run %s; let through %s" % (sys.argv[1], s["throttled"], s["passed"]))' "$n"
  kill "$proxy_pid"
  wait "$proxy_pid" 2>/dev/null || true
  proxy_pid=
done
