//! CloudFormation custom resources that deploy into the cluster (the
//! `cfn-requests` controller), against the real apiserver, moto's SQS and
//! a local server standing in for the pre-signed ResponseURL. hawser runs
//! as the chart's ServiceAccount with the chart's RBAC for the allowed
//! resources. One test per "Done when" item of issue 14.

use crate::support;

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Namespace},
    events::v1::Event,
};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::cfn_requests::*;
use support::*;

/// The issue's event, byte for byte but for where the answer goes.
const EVENT: &str = r#"{"RequestType":"Create","ResponseURL":"https://pre-signed-s3-url-that-cloud-formation-generates","StackId":"arn:aws:cloudformation:eu-west-1:123456789012:stack/MyStack/guid","RequestId":"unique id for this create request","ResourceType":"Custom::TestResource","LogicalResourceId":"MyTestResource","ResourceProperties":{"yaml":"---\n{apiVersion: v1,kind: Namespace, metadata: { annotations: {}, labels: {}, name: nightly}}\n---\n{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: mysqldb, labels: {app: mysqldb}}, spec: {replicas: 1, selector: {matchLabels: {app: mysqldb}}, template: {metadata: {labels: {app: mysqldb}}, spec: {containers: [{name: mysqldb, image: 'mysql:latest', ports: [{containerPort: 3306, name: mysql}]}]}}}}","namespace":"nightly"}}"#;

async fn events_about(client: &kube::Client, kind: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::all(client.clone());
    let list = api.list(&Default::default()).await.expect("list Events");
    list.items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.name.as_deref() == Some(name) && r.kind.as_deref() == Some(kind))
        })
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn the_issues_event_deploys_then_update_and_delete_remove_what_it_made() {
    let bed = Bed::start("namespaces,statefulsets.apps", "nightly").await;
    let namespaces: Api<Namespace> = Api::all(bed.client.clone());
    let sets: Api<StatefulSet> = Api::namespaced(bed.client.clone(), "nightly");
    // An earlier run on this test bed deleted it; it may still be going.
    eventually("no Namespace nightly being deleted", WAIT, || async {
        let ns = namespaces.get_opt("nightly").await.unwrap();
        ns.is_none_or(|ns| ns.metadata.deletion_timestamp.is_none())
            .then_some(())
    })
    .await;
    let url = format!("{}/create", bed.responses.base);
    let event = EVENT.replace(
        "https://pre-signed-s3-url-that-cloud-formation-generates",
        &url,
    );
    bed.send(&event).await;

    let answer = bed.responses.answer("create").await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["RequestId"], "unique id for this create request");
    assert_eq!(answer["LogicalResourceId"], "MyTestResource");
    assert_eq!(
        answer["StackId"],
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/MyStack/guid"
    );
    let physical = answer["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(physical.starts_with("hawser-cfn-"), "{physical}");

    let ns = namespaces.get("nightly").await.expect("Namespace nightly");
    let sts = sets
        .get("mysqldb")
        .await
        .expect("StatefulSet nightly/mysqldb");
    assert_eq!(answer["Data"]["Namespace/nightly"], json!(ns.uid()));
    assert_eq!(
        answer["Data"]["StatefulSet/nightly/mysqldb"],
        json!(sts.uid())
    );
    for labels in [ns.labels(), sts.labels()] {
        assert_eq!(labels.get(ID_LABEL), Some(&physical));
        assert_eq!(
            labels
                .get("custom-resource.hawser.io/stack-name")
                .map(String::as_str),
            Some("MyStack")
        );
        assert_eq!(
            labels
                .get("custom-resource.hawser.io/logical-id")
                .map(String::as_str),
            Some("MyTestResource")
        );
    }
    assert_eq!(sts.labels().get("app").map(String::as_str), Some("mysqldb"));
    let managers: Vec<_> = sts
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.iter().any(|m| m == "hawser-cfn"), "{managers:?}");
    for (kind, name) in [("Namespace", "nightly"), ("StatefulSet", "mysqldb")] {
        eventually(&format!("Event CreatedByStack on {kind}"), WAIT, || async {
            events_about(&bed.client, kind, name)
                .await
                .into_iter()
                .find(|(reason, _)| reason == "CreatedByStack")
        })
        .await;
    }
    bed.wait_requests("Create", "success", 1.0).await;
    eventually("the answered message deleted", WAIT, || async {
        (bed.queued().await == 0).then_some(())
    })
    .await;

    // Redelivered: nothing new, no second answer. Not the resourceVersion:
    // kube-controller-manager writes the StatefulSet's status meanwhile.
    // hawser's apply would show in the spec's generation and in the time
    // of its field manager's entry.
    let applied = |s: &StatefulSet| {
        let hawsers = s
            .managed_fields()
            .iter()
            .find(|m| m.manager.as_deref() == Some("hawser-cfn"))
            .and_then(|m| m.time.clone());
        (s.metadata.generation, hawsers)
    };
    let before = applied(&sts);
    bed.send(&event).await;
    bed.wait_requests("Create", "duplicate", 1.0).await;
    assert_eq!(bed.responses.answers("create").len(), 1);
    let again = sets.get("mysqldb").await.unwrap();
    assert_eq!(applied(&again), before, "not applied again");

    // An Update, through SNS, whose manifest drops the StatefulSet.
    let only_namespace =
        "{apiVersion: v1, kind: Namespace, metadata: {name: nightly, labels: {tier: nightly}}}";
    let update = bed.request(
        "Update",
        "update",
        Some(&physical),
        json!({"yaml": only_namespace, "namespace": "nightly", "ServiceToken": "arn:aws:sns:x"}),
    );
    let mut update = update;
    update["StackId"] = "arn:aws:cloudformation:eu-west-1:123456789012:stack/MyStack/guid".into();
    bed.send_through_sns(&update).await;
    let answer = bed.responses.answer("update").await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["PhysicalResourceId"], physical.as_str(), "stable");
    eventually("the StatefulSet deleted", WAIT, || async {
        sets.get_opt("mysqldb")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let ns = namespaces.get("nightly").await.unwrap();
    assert_eq!(ns.labels().get("tier").map(String::as_str), Some("nightly"));

    // Delete removes the rest.
    let mut delete = update.clone();
    delete["RequestType"] = "Delete".into();
    delete["RequestId"] = "delete".into();
    delete["ResponseURL"] = format!("{}/delete", bed.responses.base).into();
    bed.send(&delete.to_string()).await;
    let answer = bed.responses.answer("delete").await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    eventually("Namespace nightly going", WAIT, || async {
        match namespaces.get_opt("nightly").await.unwrap() {
            None => Some(()),
            Some(ns) => ns.metadata.deletion_timestamp.map(drop),
        }
    })
    .await;
    bed.wait_requests("Update", "success", 1.0).await;
    bed.wait_requests("Delete", "success", 1.0).await;
}

#[tokio::test]
async fn a_resource_outside_the_allowed_ones_is_refused_and_nothing_is_applied() {
    let ns = TestNamespace::create(&client().await, "cfnreq", &[]).await;
    let bed = Bed::start("configmaps", &ns.name).await;
    let manifest = format!(
        "{{apiVersion: v1, kind: ConfigMap, metadata: {{name: settings}}, data: {{a: b}}}}\n---\n\
         {{apiVersion: apps/v1, kind: Deployment, metadata: {{name: web, namespace: {}}}, spec: {{selector: {{matchLabels: {{app: web}}}}, template: {{metadata: {{labels: {{app: web}}}}, spec: {{containers: [{{name: web, image: nginx}}]}}}}}}}}",
        ns.name
    );
    let create = bed.request(
        "Create",
        "refused",
        None,
        json!({"yaml": manifest, "namespace": ns.name}),
    );
    bed.send(&create.to_string()).await;
    let answer = bed.responses.answer("refused").await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "document 2 (Deployment web): deployments.apps is not in --cfn-allowed-resources \
             (configmaps); nothing was applied"
        ),
        "{reason}"
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(bed.client.clone(), &ns.name);
    assert!(configmaps.get_opt("settings").await.unwrap().is_none());
    bed.wait_requests("Create", "failed", 1.0).await;

    // CloudFormation then deletes the resource that failed to create.
    let physical = answer["PhysicalResourceId"].as_str().unwrap();
    let delete = bed.request("Delete", "rollback", Some(physical), json!({}));
    bed.send(&delete.to_string()).await;
    let answer = bed.responses.answer("rollback").await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");

    // A malformed request is answered FAILED; one with nowhere to answer
    // is dropped.
    let malformed = bed.request("Upsert", "malformed", None, json!({}));
    bed.send(&malformed.to_string()).await;
    let answer = bed.responses.answer("malformed").await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert!(
        answer["Reason"]
            .as_str()
            .unwrap()
            .contains("Create, Update or Delete"),
        "{answer}"
    );
    bed.send(r#"{"hello": "world"}"#).await;
    bed.wait_requests("unknown", "dropped", 1.0).await;
    eventually("every message deleted", WAIT, || async {
        (bed.queued().await == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_answer_that_cannot_be_delivered_leaves_the_message_until_it_can() {
    let ns = TestNamespace::create(&client().await, "cfnreq", &[]).await;
    let bed = Bed::start("configmaps", &ns.name).await;
    bed.responses.set_up(false);
    let create = bed.request(
        "Create",
        "later",
        None,
        json!({
            "yaml": "{apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {a: b}}",
            "namespace": ns.name,
        }),
    );
    bed.send(&create.to_string()).await;
    bed.wait_requests("Create", "retry", 1.0).await;
    assert!(bed.responses.refused() >= 1);
    assert_eq!(bed.queued().await, 1, "the message stays in the queue");
    let configmaps: Api<ConfigMap> = Api::namespaced(bed.client.clone(), &ns.name);
    let cm = configmaps.get("settings").await.expect("applied once");
    assert_eq!(
        cm.annotations().get(REQUEST_ID).map(String::as_str),
        Some("later")
    );

    bed.responses.set_up(true);
    let answer = bed.responses.answer("later").await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(
        answer["Data"][format!("ConfigMap/{}/settings", ns.name)],
        json!(cm.uid())
    );
    eventually("the message deleted once answered", WAIT, || async {
        (bed.queued().await == 0).then_some(())
    })
    .await;
    let after = configmaps.get("settings").await.unwrap();
    assert_eq!(
        after.resource_version(),
        cm.resource_version(),
        "the redelivery applied nothing"
    );
    assert_eq!(bed.responses.answers("later").len(), 1);
}
