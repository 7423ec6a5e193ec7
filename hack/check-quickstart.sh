#!/usr/bin/env bash
# Runs the README's first command (hack/up.sh) in a private state directory
# and checks that its report shows each capability, then stops it. Called by
# .ci/run, so the quickstart cannot rot unnoticed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
HAWSER_TESTENV_DIR=$(mktemp -d /tmp/hawser-quickstart.XXXXXX)
export HAWSER_TESTENV_DIR
cleanup() {
  bash hack/down.sh >/dev/null 2>&1 || true
  rm -rf "$HAWSER_TESTENV_DIR"
}
trap cleanup EXIT

out=$(bash hack/up.sh 2>&1) || {
  printf '%s\n' "$out"
  die "hack/up.sh failed"
}
printf '%s\n' "$out"
# One line per capability the quickstart promises to show.
expect=(
  'hawser-demo/legacy-agent securityContext: {"privileged":false}'
  '"capabilities":{"drop":["ALL"]}'
  'hawser-demo-system/node-agent securityContext: {"privileged":true}'
  'host-names (normalised): '
  'ROUTING_PUBLIC_API_KEY'
  "Secret routing keys (base64 of 32 random bytes): {'private-api-key': 32, 'public-api-key': 32}"
  'rolearn: arn:aws:iam::123456789012:role/shop-developers'
  'iam.hawser.io/mapped-roles: {"arn:aws:iam::123456789012:role/shop-developers":"hawser-demo-env"}'
  'RoleBinding hawser-iam: edit <- '
  'aws-auth-guard-legacy.hawser.io" denied the request: hawser lockout guard'
  'stack-status CREATE_COMPLETE'
  'ConfigMap shared-stack-outputs: {"'
  'worker envFrom: [{"configMapRef":{"name":"worker-stack-outputs"'
  'annotation aws.hawser.io/region: invalid value "eu-west-1": 1 object(s) in this namespace hold AWS resources'
  'Deployment/worker (stack arn:aws:cloudformation:'
  'vpce.hawser.io/state: Available'
  'spec: ExternalName -> '
  "'available'"
  'annotation vpce.hawser.io/vpc-id'
  'answer PUT to the ResponseURL: {"Status":"SUCCESS","PhysicalResourceId":"hawser-cfn-'
  '"StatefulSet/nightly/mysqldb":"'
)
for want in "${expect[@]}"; do
  grep -qF -- "$want" <<<"$out" || die "the quickstart's report lacks: $want"
done
log "quickstart checked: ${#expect[@]} expectations met"
