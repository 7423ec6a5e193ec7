//! The change-set preview against the in-memory CloudFormation, and the
//! report's text and exit status.

use std::collections::BTreeMap;

use super::preview::{describe, preview};
use super::*;
use crate::annotations::{keys, ObjectKind, StackSpec, TemplateSource};
use crate::aws::fake_cfn::FakeCfn;
use crate::aws::{CloudFormationApi, ResourceChange};
use crate::controller::planned::Verb;
use crate::controller::stack::desired::{desired, Owner};

const TEMPLATE: &str = "Resources:\n  Q: {Type: AWS::SQS::Queue}\n";

fn want(template: &str) -> crate::controller::stack::desired::Desired {
    let spec = StackSpec {
        template: TemplateSource::Inline(template.into()),
        parameters: BTreeMap::new(),
        capabilities: vec![],
        outputs_configmap: None,
    };
    let owner = Owner {
        kind: ObjectKind::Deployment,
        namespace: "team-a".into(),
        name: "web".into(),
        uid: "u1".into(),
    };
    desired(&spec, template, &owner, "prod", &Default::default())
}

#[tokio::test]
async fn a_preview_creates_describes_and_deletes_its_change_set_and_executes_nothing() {
    let cfn = FakeCfn::default();
    let first = want(TEMPLATE);
    cfn.create_stack(&first.request).await.unwrap();
    cfn.clear_calls();

    // The same spec: no change; the empty change set is deleted too.
    assert_eq!(preview(&cfn, &first).await.unwrap(), []);
    assert_eq!(cfn.mutating_calls(), ["CreateChangeSet", "DeleteChangeSet"]);
    assert!(cfn.lock().change_sets.is_empty());

    cfn.clear_calls();
    let edited = want(&format!("{TEMPLATE}  B: {{Type: AWS::S3::Bucket}}\n"));
    preview(&cfn, &edited).await.unwrap();
    assert_eq!(cfn.mutating_calls(), ["CreateChangeSet", "DeleteChangeSet"]);
    assert!(cfn.lock().change_sets.is_empty(), "never left behind");
    assert!(!cfn.calls().contains(&"ExecuteChangeSet"));
}

#[tokio::test]
async fn a_refused_change_set_is_an_error_and_still_deleted() {
    let cfn = FakeCfn::default();
    let first = want(TEMPLATE);
    cfn.create_stack(&first.request).await.unwrap();
    cfn.fail_next(
        "CreateChangeSet",
        "ValidationError",
        "Template format error",
    );
    let err = preview(&cfn, &want("x")).await.unwrap_err();
    assert!(err.contains("Template format error"), "{err}");
    assert!(cfn.lock().change_sets.is_empty());
}

#[test]
fn resource_changes_read_as_one_line() {
    let change = |action: &str, id: &str, replacement: Option<&str>| ResourceChange {
        action: action.into(),
        logical_id: id.into(),
        resource_type: "AWS::SQS::Queue".into(),
        replacement: replacement.map(str::to_owned),
    };
    assert_eq!(
        describe(&[
            change("Add", "A", None),
            change("Modify", "B", Some("True")),
            change("Modify", "C", Some("Conditional")),
            change("Remove", "D", None),
        ]),
        "Add A (AWS::SQS::Queue); Modify B (AWS::SQS::Queue, replaced); \
         Modify C (AWS::SQS::Queue, maybe replaced); Remove D (AWS::SQS::Queue)"
    );
}

fn entry(name: &str, status: Status, actions: Vec<Action>, message: Option<&str>) -> Entry {
    Entry {
        file: "m.yaml".into(),
        document: 1,
        item: None,
        kind: "Service".into(),
        namespace: Some("team-a".into()),
        name: name.into(),
        status,
        scope: Some("us-west-2".into()),
        actions,
        message: message.map(str::to_owned),
    }
}

#[test]
fn the_text_report_and_the_exit_status() {
    let create = Action::new(
        Verb::Create,
        "vpc-endpoint",
        None,
        "com.amazonaws.us-west-2.s3",
    );
    let mut report = Report {
        objects: vec![
            entry("a", Status::Changes, vec![create], None),
            entry("b", Status::NoChange, vec![], None),
        ],
    };
    assert_eq!(
        render_text(&report),
        "m.yaml: document 1: Service team-a/a: 1 change(s) in us-west-2\n\
         \x20 create vpc-endpoint: com.amazonaws.us-west-2.s3\n\
         m.yaml: document 1: Service team-a/b: no change\n\
         2 object(s), 1 AWS change(s)\n"
    );
    assert_eq!(report.status(), 0);
    report.objects.push(entry(
        "c",
        Status::Refused,
        vec![],
        Some(&format!("{}: not a service name", keys::VPCE_SERVICE_NAME)),
    ));
    assert_eq!(report.status(), 1);
    assert!(render_text(&report).contains(
        "Service team-a/c: refused by the webhook: vpce.hawser.io/service-name: not a service name"
    ));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["objects"][0]["actions"][0]["action"], "create");
    assert_eq!(json["objects"][1]["status"], "no-change");
}
