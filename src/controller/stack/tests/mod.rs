//! Decisions (pure) and apply/cleanup against the in-memory CloudFormation.

mod apply;
mod cleanup;
mod desired;
mod failures;
mod machine;
mod scenarios;

use std::collections::BTreeMap;

use super::desired::{desired, Desired, Owner};
use super::machine::Memo;
use crate::annotations::{keys, NamespaceSpec, ObjectKind, StackSpec};
use crate::aws::{Stack, StackStatus, Tags};

const UID: &str = "6f1c2a40-0000-4000-8000-000000000001";
const CLUSTER: &str = "prod";
const TEMPLATE: &str = "Parameters:\n  QueueName: {Type: String}\nResources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Ref QueueName}\nOutputs:\n  QueueUrl: {Value: !Ref Queue}\n";

fn owner() -> Owner {
    Owner {
        kind: ObjectKind::Namespace,
        namespace: "team-a".into(),
        name: "team-a".into(),
        uid: UID.into(),
    }
}

fn spec(parameters: &str) -> StackSpec {
    let ann = BTreeMap::from([
        (keys::CFN_TEMPLATE.to_owned(), TEMPLATE.to_owned()),
        (keys::CFN_PARAMETERS.to_owned(), parameters.to_owned()),
    ]);
    NamespaceSpec::from_annotations(&ann)
        .unwrap()
        .stack
        .unwrap()
}

fn want(parameters: &str) -> Desired {
    desired(&spec(parameters), TEMPLATE, &owner(), CLUSTER, &Tags::new())
}

/// A stack as `want` would have made it, in `status`.
fn stack_for(want: &Desired, status: StackStatus) -> Stack {
    Stack {
        id: format!(
            "arn:aws:cloudformation:us-west-2:123456789012:stack/{}/1",
            want.request.stack_name
        ),
        name: want.request.stack_name.clone(),
        status,
        status_reason: None,
        outputs: BTreeMap::from([("QueueUrl".to_owned(), "https://sqs/q".to_owned())]),
        parameters: want.request.parameters.clone(),
        tags: want.request.tags.clone(),
    }
}

/// The memo of a stack last brought to `want`.
fn holding(want: &Desired) -> Memo {
    Memo {
        applied: Some(want.spec_hash.clone()),
        ..Memo::default()
    }
}

/// The memo of a stack last brought to another spec.
fn outdated() -> Memo {
    Memo {
        applied: Some("0ld".into()),
        ..Memo::default()
    }
}
