//! Desired state (pure) and apply/cleanup against the in-memory EC2.

mod apply;
mod cleanup;
mod desired;
mod plan;
mod scenarios;

use std::collections::BTreeMap;

use super::apply::{apply, Applied, Recorded};
use super::cleanup::{cleanup, Cleanup};
use super::desired::*;
use super::effects::Effect;
use super::error::Error;
use crate::annotations::{keys, DeletionPolicy, SecurityGroups, VpceSpec};
use crate::aws::fake::FakeEc2;
use crate::aws::{AwsErrorKind, CidrRule, Endpoint, EndpointState, SecurityGroup, Tags};
use crate::controller::reconciler::Failure as _;

const VPC: &str = "vpc-0123456789abcdef0";
const SUBNET_A: &str = "subnet-0000000000000000a";
const SUBNET_B: &str = "subnet-0000000000000000b";
const UID: &str = "6f1c2a40-0000-4000-8000-000000000001";

fn spec() -> VpceSpec {
    let ann = BTreeMap::from([
        (
            keys::VPCE_SERVICE_NAME.to_owned(),
            "com.amazonaws.us-west-2.s3".to_owned(),
        ),
        (keys::VPCE_SUBNET_IDS.to_owned(), SUBNET_B.to_owned()),
    ]);
    VpceSpec::from_annotations(&ann).unwrap().unwrap()
}

fn owner() -> Owner {
    Owner {
        namespace: "team-a".into(),
        name: "db".into(),
        uid: UID.into(),
    }
}

fn defaults() -> Defaults {
    Defaults {
        vpc_id: Some(VPC.into()),
        subnet_ids: vec![SUBNET_A.into()],
        tags: Tags::new(),
    }
}

fn want(spec: &VpceSpec) -> Desired {
    desired(spec, &owner(), "prod", &defaults()).unwrap()
}

async fn apply_ok(ec2: &FakeEc2, d: &Desired, recorded: &Recorded) -> Applied {
    apply(ec2, d, UID, recorded).await.unwrap()
}

fn recorded(a: &Applied) -> Recorded {
    Recorded {
        endpoint_id: Some(a.endpoint.id.clone()),
        group_id: a.group_id.clone(),
    }
}
