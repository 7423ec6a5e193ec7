#!/usr/bin/env bash
# Starts the real test bed on loopback: etcd, kube-apiserver (v1.20.2, with
# the admission webhook plugins, RBAC and client-cert auth), the
# kube-controller-manager, and moto_server. Writes a kubeconfig and an env
# file into the state directory and records every PID there, so down.sh
# (or a trap) can stop exactly what this started.
#
# Environment (all optional):
#   HAWSER_TESTENV_DIR   state directory (default: <repo>/.testenv)
#   HAWSER_CACHE         cache for binaries and venvs (default: ~/.cache/hawser)
#   ETCD_PORT ETCD_PEER_PORT APISERVER_PORT MOTO_PORT   fixed ports (default: free ones)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
repo=$(cd "$here/../.." && pwd)
STATE=${HAWSER_TESTENV_DIR:-$repo/.testenv}

"$here/build-kube.sh"
"$here/install-moto.sh"
apt_install etcd-server openssl curl

if [ -f "$STATE/env" ] && "$here/status.sh" >/dev/null 2>&1; then
  log "test bed already running (state in $STATE); run hack/testenv/down.sh to stop it"
  exit 0
fi
"$here/down.sh" >/dev/null 2>&1 || true
rm -rf "$STATE"
mkdir -p "$STATE"/{pki,logs,pids,etcd,cmd}
STATE=$(cd "$STATE" && pwd)

ETCD_PORT=${ETCD_PORT:-$(free_port)}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-$(free_port)}
APISERVER_PORT=${APISERVER_PORT:-$(free_port)}
MOTO_PORT=${MOTO_PORT:-$(free_port)}

# --- PKI: a cluster CA, the apiserver's serving cert, an admin client cert
# (system:masters), and the service-account signing key.
pki=$STATE/pki
(
  cd "$pki"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -subj /CN=hawser-testenv-ca -days 30 -out ca.crt 2>/dev/null
  cat >apiserver.ext <<EXT
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
EXT
  openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key 2>/dev/null
  openssl req -new -key apiserver.key -subj /CN=kube-apiserver -out apiserver.csr 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  openssl ecparam -name prime256v1 -genkey -noout -out admin.key 2>/dev/null
  openssl req -new -key admin.key -subj "/O=system:masters/CN=testenv-admin" -out admin.csr 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile client.ext -out admin.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)

start() { # start NAME CMD...: runs CMD in the background, logs and PID in the state dir
  local name=$1; shift
  "$@" >"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$STATE/pids/$name.pid"
  # The command line, for restart.sh.
  printf '%q ' "$@" >"$STATE/cmd/$name"
}

wait_for() { # wait_for WHAT SECONDS CMD...: polls CMD until it succeeds or the deadline passes
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what did not come up within ${secs}s; last log lines:"
      tail -n 30 "$STATE/logs/$what.log" >&2 || true
      exit 1
    fi
    sleep 0.3
  done
}

log "starting etcd on 127.0.0.1:$ETCD_PORT"
start etcd etcd --name testenv --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "testenv=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

log "starting kube-apiserver v1.20.2 on 127.0.0.1:$APISERVER_PORT"
start kube-apiserver "$KUBE_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" --insecure-port 0 \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --authorization-mode RBAC \
  --enable-admission-plugins NamespaceLifecycle,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota \
  --service-cluster-ip-range 10.96.0.0/16 \
  --allow-privileged=true \
  --profiling=false \
  --v=1
kcurl() { curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$APISERVER_PORT$1"; }
wait_for kube-apiserver 90 kcurl /readyz

cat >"$STATE/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: testenv-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: testenv
  context: {cluster: testenv, user: testenv-admin}
current-context: testenv
KC

chmod 600 "$STATE/kubeconfig"
log "starting kube-controller-manager"
start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
  --kubeconfig "$STATE/kubeconfig" --authentication-kubeconfig "$STATE/kubeconfig" \
  --authorization-kubeconfig "$STATE/kubeconfig" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --use-service-account-credentials=true \
  --leader-elect=false --bind-address 127.0.0.1 --port 0 --secure-port 0 \
  --controllers '*,-nodeipam,-nodelifecycle,-attachdetach,-persistentvolume-binder,-persistentvolume-expander,-pvc-protection,-pv-protection,-ttl,-route,-cloud-node-lifecycle,-service' \
  --v=1

log "starting moto_server $MOTO_VERSION on 127.0.0.1:$MOTO_PORT"
start moto "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
wait_for moto 60 curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/"

KUBECTL="$KUBE_BIN/kubectl --kubeconfig $STATE/kubeconfig"
# Kubernetes 1.20 has no kubernetes.io/metadata.name label, so the webhook
# configurations' exclusion of kube-system by name cannot match; the opt-out
# label excludes it on every version.
wait_for kube-apiserver 30 $KUBECTL get namespace kube-system
$KUBECTL label namespace kube-system hawser.io/admission=disabled --overwrite >/dev/null
# The controller-manager creates each namespace's default ServiceAccount;
# pods (and so Deployments' ReplicaSets) need it.
wait_for kube-controller-manager 60 $KUBECTL -n default get serviceaccount default

cat >"$STATE/env" <<ENV
# Written by hack/testenv/up.sh; source it to talk to the test bed.
export HAWSER_TESTENV_DIR=$STATE
export KUBECONFIG=$STATE/kubeconfig
export PATH=$KUBE_BIN:\$PATH
export HAWSER_TESTENV_APISERVER=https://127.0.0.1:$APISERVER_PORT
export HAWSER_TESTENV_MOTO=http://127.0.0.1:$MOTO_PORT
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export HAWSER_TESTENV_MOTO_SERVER=$MOTO_VENV/bin/moto_server
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-west-2
ENV
log "test bed up: . $STATE/env  (kubectl v1.20.2 on PATH, KUBECONFIG, AWS_ENDPOINT_URL)"
