#!/usr/bin/env bash
# Quickstart: the local test bed (kube-apiserver v1.20.2 + etcd + moto) with
# hawser running against it, the webhooks registered, and examples/ applied.
# Prints what happened to each example. Stop it all with hack/down.sh.
#
# First run on a fresh machine: about 15 minutes (Kubernetes is built from
# Debian's source package, hawser from source); later runs: seconds.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HAWSER_CACHE/target}
export HAWSER_TESTENV_DIR=${HAWSER_TESTENV_DIR:-$repo/.testenv}
STATE=$HAWSER_TESTENV_DIR

if [ -f "$STATE/pids/hawser.pid" ] && kill -0 "$(cat "$STATE/pids/hawser.pid")" 2>/dev/null; then
  log "hawser is already running; hack/down.sh stops it"
  exit 0
fi

log "building hawser"
cargo build --locked --quiet --bin hawser
HAWSER="$CARGO_TARGET_DIR/debug/hawser"

bash hack/testenv/up.sh
# shellcheck disable=SC1091
. "$STATE/env"

# hawser runs as it runs in a cluster: as the chart's ServiceAccount
# `hawser`, with exactly the chart's RBAC (rendered by helm for these
# controllers) and a token of that ServiceAccount. The admin certificate
# is only for this script's own setup and its report.
# The queue CloudFormation's custom-resource requests arrive in (in a
# cluster, from an SNS topic: examples/cfn-requests/queue.yaml).
QUEUE_URL=$("$MOTO_VENV/bin/python" -c 'import boto3,os; print(boto3.client("sqs",endpoint_url=os.environ["AWS_ENDPOINT_URL"],region_name=os.environ["AWS_REGION"]).create_queue(QueueName="hawser-quickstart-requests")["QueueUrl"])')
CFN_ALLOW=(--set 'cfnRequests.allowedResources={namespaces,statefulsets.apps}' --set 'cfnRequests.allowedNamespaces={nightly}')
helm=$(bash hack/install-helm.sh)
"$helm" template hawser charts/hawser --namespace default --set certs.mode=directory \
  --set 'controllers={vpce,namespace,stack,cfn-requests}' --set clusterName=quickstart \
  --set cfnRequests.queueUrl="$QUEUE_URL" "${CFN_ALLOW[@]}" \
  --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml >"$STATE/hawser-rbac.yaml"
kubectl apply -f "$STATE/hawser-rbac.yaml" >/dev/null
SA_USER=system:serviceaccount:default:hawser
wait_until 30 "the chart's RBAC" kubectl auth can-i patch services --as "$SA_USER" -A
token=$(kubectl create --raw /api/v1/namespaces/default/serviceaccounts/hawser/token -f - <<'JSON' |
{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 86400}}
JSON
  python3 -c 'import json, sys; print(json.load(sys.stdin)["status"]["token"])')
cat >"$STATE/hawser-kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster: {server: "$HAWSER_TESTENV_APISERVER", certificate-authority: "$STATE/pki/ca.crt"}
users:
- name: hawser
  user: {token: "$token"}
contexts:
- name: hawser
  context: {cluster: testenv, user: hawser}
current-context: hawser
KC
chmod 600 "$STATE/hawser-kubeconfig"

WEBHOOK_PORT=${WEBHOOK_PORT:-$(free_port)}
ADMIN_PORT=${ADMIN_PORT:-$(free_port)}
"$HAWSER" certs --ip 127.0.0.1 --out "$STATE/webhook-certs" >/dev/null
log "starting hawser: webhook https://127.0.0.1:$WEBHOOK_PORT, admin http://127.0.0.1:$ADMIN_PORT"
# The VPC endpoint and stack controllers talk to moto (AWS_ENDPOINT_URL from
# the env file); their Lease (`hawser`) lives in `default`, the test bed
# having no hawser-system. The namespace controller edits
# kube-system/aws-auth.
KUBECONFIG="$STATE/hawser-kubeconfig" \
"$HAWSER" run --webhook-addr "127.0.0.1:$WEBHOOK_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" \
  --tls-cert-dir "$STATE/webhook-certs" --controller-username "$SA_USER" \
  --controllers vpce,namespace,stack,cfn-requests --cluster-name quickstart --namespace default --resync-period 1m \
  --cfn-requests-queue-url "$QUEUE_URL" --cfn-allowed-resources namespaces,statefulsets.apps \
  --cfn-allowed-namespaces nightly \
  >"$STATE/logs/hawser.log" 2>&1 &
echo $! >"$STATE/pids/hawser.pid"
wait_until 60 "hawser /readyz" curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz"

"$HAWSER" manifests webhook --ca-bundle-file "$STATE/webhook-certs/ca.crt" \
  --url "https://127.0.0.1:$WEBHOOK_PORT" --aws-auth-guard >"$STATE/webhook-configurations.yaml"
kubectl apply -f "$STATE/webhook-configurations.yaml"
cat >>"$STATE/env" <<ENV
export HAWSER_ADMIN=http://127.0.0.1:$ADMIN_PORT
export HAWSER_WEBHOOK=https://127.0.0.1:$WEBHOOK_PORT
ENV

# The apiserver picks up new webhook configurations within a second or so;
# wait until a server-side dry run of a privileged Deployment comes back hardened.
kubectl apply -f examples/hardening/00-namespace.yaml
hardened() {
  [ "$(kubectl create --dry-run=server -f examples/hardening/privileged-deployment.yaml \
    -o 'jsonpath={.spec.template.spec.containers[0].securityContext.privileged}' 2>/dev/null)" = false ]
}
wait_until 30 "webhook registration" hardened

echo
echo "== kubectl apply -f examples/hardening/"
kubectl apply -f examples/hardening/ 2>&1 | sed 's/^/   /'

echo
echo "== What hawser did"
show() { # show NAMESPACE DEPLOYMENT
  printf '   %s/%s securityContext: ' "$1" "$2"
  kubectl -n "$1" get deployment "$2" -o jsonpath='{.spec.template.spec.containers[0].securityContext}'
  echo
}
show hawser-demo legacy-agent
show hawser-demo api
show hawser-demo-system node-agent

echo
echo "== An aws-auth with a node role, as EKS has it (hawser adds to it, never removes it)"
kubectl apply -f - <<'YAML' 2>&1 | sed 's/^/   /'
apiVersion: v1
kind: ConfigMap
metadata: {name: aws-auth, namespace: kube-system}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::123456789012:role/quickstart-nodes
      username: system:node:{{EC2PrivateDNSName}}
      groups: [system:bootstrappers, system:nodes]
YAML

echo
echo "== kubectl apply -f examples/environment/ -f examples/routing/"
kubectl apply -f examples/environment/ 2>&1 | sed 's/^/   /'
kubectl apply -f examples/routing/ 2>&1 | sed 's/^/   /'
printf '   hawser-demo-env host-names (normalised): '
kubectl get namespace hawser-demo-env -o jsonpath='{.metadata.annotations.env\.hawser\.io/host-names}'
echo
mapped() { kubectl -n kube-system get configmap aws-auth -o jsonpath='{.data.mapRoles}' | grep -q shop-developers; }
wait_until 60 "the aws-auth entry" mapped
wait_until 60 "Secret routing" kubectl -n hawser-demo-env get secret routing
printf '   Secret routing keys (base64 of 32 random bytes): '
kubectl -n hawser-demo-env get secret routing -o jsonpath='{.data}' | python3 -c \
  'import sys,json,base64; print({k: len(base64.b64decode(base64.b64decode(v))) for k,v in json.load(sys.stdin).items()})'
echo '   kube-system/aws-auth mapRoles (the node role kept, hawser'"'"'s entry appended):'
kubectl -n kube-system get configmap aws-auth -o jsonpath='{.data.mapRoles}' | sed 's/^/     /'
printf '   ownership record iam.hawser.io/mapped-roles: '
kubectl -n kube-system get configmap aws-auth -o jsonpath='{.metadata.annotations.iam\.hawser\.io/mapped-roles}'
echo
wait_until 60 "RoleBinding hawser-iam" kubectl -n hawser-demo-env get rolebinding hawser-iam
printf '   RoleBinding hawser-iam: '
kubectl -n hawser-demo-env get rolebinding hawser-iam -o jsonpath='{.roleRef.name} <- {.subjects[*].name}'
echo
echo '   The lockout guard refuses to drop the node role:'
kubectl -n kube-system patch configmap aws-auth --type merge -p '{"data":{"mapRoles":""}}' 2>&1 | sed 's/^/     /' || true
printf '   hawser-demo-env/storefront pod template annotations: '
kubectl -n hawser-demo-env get deployment storefront -o jsonpath='{.spec.template.metadata.annotations}'
echo
printf '   hawser-demo-env/storefront env: '
kubectl -n hawser-demo-env get deployment storefront -o jsonpath='{.spec.template.spec.containers[0].env}'
echo
echo
echo "== VPC endpoint: bash hack/vpce-example.sh | kubectl apply -f -   (a VPC and subnets are made in moto first)"
bash hack/vpce-example.sh 2>/dev/null | kubectl apply -f - 2>&1 | sed 's/^/   /'
available() {
  [ "$(kubectl -n hawser-demo get service s3 -o 'jsonpath={.metadata.annotations.vpce\.hawser\.io/state}')" = Available ]
}
wait_until 60 "the VPC endpoint to be available" available
for key in state endpoint-id dns-name security-group-id; do
  printf '   vpce.hawser.io/%s: ' "$key"
  kubectl -n hawser-demo get service s3 -o "jsonpath={.metadata.annotations.vpce\.hawser\.io/$key}"
  echo
done
printf '   spec: '
kubectl -n hawser-demo get service s3 -o 'jsonpath={.spec.type} -> {.spec.externalName}'
echo
echo "   in moto: $("$MOTO_VENV/bin/python" -c 'import boto3,os; e=boto3.client("ec2",endpoint_url=os.environ["AWS_ENDPOINT_URL"],region_name=os.environ["AWS_REGION"]); print([ (v["VpcEndpointId"], v["State"]) for v in e.describe_vpc_endpoints(Filters=[{"Name":"tag:hawser.io/cluster","Values":["quickstart"]}])["VpcEndpoints"]])')"

echo
echo "== CloudFormation stacks: kubectl apply -f examples/stack/namespace-stack.yaml -f examples/stack/deployment-stack.yaml"
kubectl apply -f examples/stack/namespace-stack.yaml 2>&1 | sed 's/^/   /'
kubectl apply -f examples/stack/deployment-stack.yaml 2>&1 | sed 's/^/   /'
stacks_ready() {
  [ "$(kubectl get namespace hawser-demo-stack -o 'jsonpath={.metadata.annotations.cfn\.hawser\.io/stack-status}')" = CREATE_COMPLETE ] &&
    [ "$(kubectl -n hawser-demo-stack get deployment worker -o 'jsonpath={.metadata.annotations.cfn\.hawser\.io/stack-status}')" = CREATE_COMPLETE ]
}
wait_until 60 "both stacks to be created" stacks_ready
for obj in "namespace hawser-demo-stack" "-n hawser-demo-stack deployment worker"; do
  # shellcheck disable=SC2086
  printf '   %s: stack-status %s, stack-id %s\n' "${obj##* }" \
    "$(kubectl get $obj -o 'jsonpath={.metadata.annotations.cfn\.hawser\.io/stack-status}')" \
    "$(kubectl get $obj -o 'jsonpath={.metadata.annotations.cfn\.hawser\.io/stack-id}')"
done
for cm in shared-stack-outputs worker-stack-outputs; do
  printf '   ConfigMap %s: ' "$cm"
  kubectl -n hawser-demo-stack get configmap "$cm" -o 'jsonpath={.data}'
  echo
done
printf '   worker envFrom: '
kubectl -n hawser-demo-stack get deployment worker -o 'jsonpath={.spec.template.spec.containers[0].envFrom}'
echo
echo '   The namespace cannot move to another region while its stacks exist:'
kubectl annotate namespace hawser-demo-stack aws.hawser.io/region=eu-west-1 2>&1 | sed 's/^/     /' || true

echo
echo "== CloudFormation custom resource: examples/cfn-requests/create-event.json on the queue"
RESPONSE_PORT=$(free_port)
python3 hack/response-url.py "$STATE/cfn-responses" "$RESPONSE_PORT" >"$STATE/logs/response-url.log" 2>&1 &
echo $! >"$STATE/pids/response-url.pid"
"$MOTO_VENV/bin/python" - "$QUEUE_URL" "http://127.0.0.1:$RESPONSE_PORT/create?X-Amz-Signature=demo" <<'PY'
import boto3, json, os, sys
event = json.load(open("examples/cfn-requests/create-event.json"))
event["ResponseURL"] = sys.argv[2]  # where CloudFormation's pre-signed URL would be
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
sqs.send_message(QueueUrl=sys.argv[1], MessageBody=json.dumps(event))
PY
wait_until 60 "hawser's answer to the ResponseURL" test -s "$STATE/cfn-responses/create.json"
printf '   answer PUT to the ResponseURL: '
cat "$STATE/cfn-responses/create.json"
echo
kubectl get namespace nightly -L custom-resource.hawser.io/id 2>&1 | sed 's/^/   /'
kubectl -n nightly get statefulset mysqldb 2>&1 | sed 's/^/   /'

echo
echo "== A refused annotation (server-side dry run would only warn; this is a real apply):"
kubectl -n hawser-demo annotate deployment api vpce.hawser.io/vpc-id=vpc-12 2>&1 | sed 's/^/   /' || true
echo
cat <<MSG

== Admission metrics (curl \$HAWSER_ADMIN/metrics):
$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep '^hawser_admission_requests_total' | sed 's/^/   /')

hawser is running against the local test bed. To poke at it:
   . $STATE/env            # kubectl v1.20.2 on PATH, KUBECONFIG, AWS_ENDPOINT_URL (moto)
   kubectl get deployments -A
   curl \$HAWSER_ADMIN/metrics
   tail -f $STATE/logs/hawser.log
Stop everything with: bash hack/down.sh
MSG
