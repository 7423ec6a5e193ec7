#!/usr/bin/env bash
# Makes examples/vpce/ runnable against the test bed: creates a VPC with two
# subnets in its moto_server and prints examples/vpce/service.yaml with their
# ids in place of the placeholders, ready for `kubectl apply -f -`. On
# stderr it prints the hawser flags that run the controller for them.
#
#   . .testenv/env            # the test bed (hack/up.sh or hack/testenv/up.sh)
#   bash hack/vpce-example.sh | kubectl apply -f -
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
: "${AWS_ENDPOINT_URL:?source the test bed env first, e.g. . .testenv/env}"

read -r vpc subnets < <("$MOTO_VENV/bin/python" - <<'PY'
import os
import boto3
ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                   region_name=os.environ.get("AWS_REGION", "us-west-2"))
vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24")["Subnet"]["SubnetId"]
           for i in (1, 2)]
print(vpc, ",".join(subnets))
PY
)

sed -e "s/vpc-0a1b2c3d4e5f67890/$vpc/" \
    -e "s/subnet-0a1b2c3d4e5f67890,subnet-0f1e2d3c4b5a69788/$subnets/" \
    examples/vpce/service.yaml
log "created $vpc with subnets $subnets in moto ($AWS_ENDPOINT_URL)"
log "run the controller with: hawser run --controllers vpce --cluster-name demo --default-vpc-id $vpc"
