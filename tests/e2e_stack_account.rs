//! A Namespace's stack runs in the namespace's account and region: its
//! `aws.hawser.io/role-arn` is assumed (session `hawser-<namespace>`) and
//! its `aws.hawser.io/region` chosen, through the same `controller::scope`
//! as VPC endpoints.
//!
//! What moto proves: a stack made with credentials moto issued for the
//! role lives in the role's account, and in the chosen region; it is not
//! visible to hawser's own account. What it does not: moto's AssumeRole
//! admits any caller, so the role's trust policy is not tested.

use crate::support;

use support::moto::{create_role, TENANT_ACCOUNT};
use support::stack::*;
use support::*;

const TEMPLATE: &str = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n";
const TENANT_REGION: &str = "eu-west-1";

#[tokio::test]
async fn a_namespace_stack_is_made_in_the_namespaces_account_and_region() {
    let bed = Bed::start("10m").await;
    let role = create_role(&unique("stack-tenant")).await;
    bed.annotate_namespace(&[
        ("cfn.hawser.io/template", TEMPLATE),
        ("aws.hawser.io/role-arn", &role),
        ("aws.hawser.io/region", TENANT_REGION),
    ])
    .await;
    let ns = bed
        .namespace_where("stack-status CREATE_COMPLETE", |a| {
            ann(a, STACK_STATUS) == Some("CREATE_COMPLETE")
        })
        .await;
    let id = ann(ns.metadata.annotations.as_ref().unwrap(), STACK_ID)
        .expect("stack-id")
        .to_owned();
    // arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
    let fields: Vec<&str> = id.split(':').collect();
    assert_eq!(
        (fields[3], fields[4]),
        (TENANT_REGION, TENANT_ACCOUNT),
        "stack id {id}"
    );
    // hawser's own account (the bed's client) has no such stack.
    assert!(
        bed.stack(&bed.stack_name(None)).await.is_none(),
        "the stack was also made in hawser's own account and region"
    );
    assert_eq!(
        bed.aws_calls("CreateStack", "success").await,
        1.0,
        "one CreateStack, made with the assumed credentials"
    );
}
