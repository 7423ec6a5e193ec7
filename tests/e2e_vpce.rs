//! VPC endpoints for annotated Services, against the real apiserver and
//! moto: one test per "Done when" item of issue 4, plus terminal failure,
//! steady-state cost and trigger removal. Each test has its own VPC,
//! namespace, cluster name and hawser (`--watch-namespace`), so tests run
//! in parallel. No webhook is registered, so the controller stands alone,
//! except in the namespace-region test, which is about the webhook.

use crate::support;

use std::time::Duration;

use kube::{
    api::{DeleteParams, Patch, PatchParams},
    ResourceExt,
};
use support::moto;
use support::vpce::*;
use support::*;

#[tokio::test]
async fn the_example_becomes_external_name_with_outputs_and_events() {
    let bed = Bed::start("10m").await;
    let example = std::fs::read_to_string("examples/vpce/service.yaml").unwrap();
    let manifest = example
        .replace(
            "namespace: hawser-demo",
            &format!("namespace: {}", bed.ns.name),
        )
        .replace("vpc-0a1b2c3d4e5f67890", &bed.net.vpc_id)
        .replace(
            "subnet-0a1b2c3d4e5f67890,subnet-0f1e2d3c4b5a69788",
            &bed.net.subnets.join(","),
        );
    let out = kubectl_apply(&manifest);
    assert!(out.success, "kubectl apply: {}", out.stderr);

    let svc = bed.available("s3").await;
    let live = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(live.len(), 1, "exactly one endpoint");
    let endpoint = &live[0];
    let first_dns = endpoint.dns_entries()[0].dns_name().unwrap();
    assert_eq!(ann(&svc, ENDPOINT_ID), endpoint.vpc_endpoint_id());
    assert_eq!(ann(&svc, DNS_NAME), Some(first_dns));
    assert_eq!(external_name(&svc), (Some("ExternalName"), Some(first_dns)));
    let group = bed
        .group_id("s3")
        .await
        .expect("generated group hawser-<ns>-s3");
    assert_eq!(ann(&svc, GROUP_ID), Some(group.as_str()));
    assert_eq!(moto::group_ids(endpoint), [group]);
    assert_eq!(moto::subnet_ids(endpoint), {
        let mut s = bed.net.subnets.clone();
        s.sort();
        s
    });
    assert_eq!(
        moto::tag(endpoint, "hawser.io/cluster"),
        Some(bed.cluster.as_str())
    );
    let owner = format!("Service/{}/s3", bed.ns.name);
    assert_eq!(moto::tag(endpoint, "hawser.io/owner"), Some(owner.as_str()));
    assert_eq!(moto::tag(endpoint, "hawser.io/uid"), svc.uid().as_deref());
    assert!(svc
        .finalizers()
        .iter()
        .any(|f| f == "vpce.hawser.io/cleanup"));
    let managers: Vec<_> = svc
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"hawser".to_owned()), "{managers:?}");

    let note = bed.wait_event("s3", "EndpointAvailable").await;
    assert!(note.contains(first_dns), "{note}");
    let reasons: Vec<String> = bed.events("s3").await.into_iter().map(|e| e.1).collect();
    for reason in ["SecurityGroupCreated", "EndpointCreated"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
}

#[tokio::test]
async fn steady_state_resyncs_make_no_mutating_aws_calls() {
    let bed = Bed::start("2s").await;
    bed.available_endpoint("db").await;
    let applied = r#"hawser_reconcile_total{controller="vpce",result="applied"}"#;
    let before_applied = bed.hawser().metric(applied).await;
    let before_describes = bed.aws_calls("DescribeVpcEndpoints", "success").await;
    let mutating = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("hawser_aws_api_calls_total{"))
            .filter(|l| !l.contains("Describe") && l.contains(r#"service="ec2""#))
            .map(|l| l.to_owned())
            .collect::<Vec<_>>()
    };
    let before = mutating(&bed.hawser().metrics().await);
    // Three applied passes: a pass already under way when the baselines
    // were read counts as applied but its describe came before them, so
    // only two of the three are sure to fall wholly inside the window.
    eventually("three resyncs", Duration::from_secs(30), || async {
        (bed.hawser().metric(applied).await >= before_applied + 3.0).then_some(())
    })
    .await;
    assert_eq!(
        mutating(&bed.hawser().metrics().await),
        before,
        "no mutating call"
    );
    let describes = bed.aws_calls("DescribeVpcEndpoints", "success").await - before_describes;
    assert!(describes >= 2.0, "each resync reads: {describes}");
}

#[tokio::test]
async fn provided_groups_are_attached_exactly() {
    let bed = Bed::start("10m").await;
    let a = bed.net.foreign_group(&bed.ec2, "team-a").await;
    let b = bed.net.foreign_group(&bed.ec2, "team-b").await;
    let groups = format!("{b},{a}");
    bed.create(
        "api",
        &[
            ("vpce.hawser.io/subnet-ids", &bed.net.subnets[0]),
            ("vpce.hawser.io/security-group-ids", &groups),
        ],
    )
    .await;
    let svc = bed.available("api").await;
    let live = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(live.len(), 1);
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(moto::group_ids(&live[0]), want);
    assert_eq!(bed.group_id("api").await, None, "no generated group");
    assert_eq!(ann(&svc, GROUP_ID), None);
}

#[tokio::test]
async fn editing_subnets_modifies_the_same_endpoint() {
    let bed = Bed::start("10m").await;
    let before = bed.available_endpoint("db").await;
    let id = ann(&before, ENDPOINT_ID).unwrap().to_owned();

    bed.annotate(
        "db",
        "vpce.hawser.io/subnet-ids",
        &bed.net.subnets.join(","),
    )
    .await;
    let mut want = bed.net.subnets.clone();
    want.sort();
    let live = eventually("the endpoint in both subnets", WAIT, || async {
        let live = bed.net.live_endpoints(&bed.ec2).await;
        (live.len() == 1 && moto::subnet_ids(&live[0]) == want).then_some(live)
    })
    .await;
    assert_eq!(
        live[0].vpc_endpoint_id(),
        Some(id.as_str()),
        "same endpoint id"
    );
    assert_eq!(bed.aws_calls("CreateVpcEndpoint", "success").await, 1.0);
    assert_eq!(bed.aws_calls("ModifyVpcEndpoint", "success").await, 1.0);
    let note = bed.wait_event("db", "EndpointModified").await;
    assert!(
        note.contains(&id) && note.contains("added subnets"),
        "{note}"
    );
    assert_eq!(
        ann(&bed.available("db").await, ENDPOINT_ID),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn deleting_removes_the_endpoint_and_generated_group_but_not_a_provided_one() {
    let bed = Bed::start("10m").await;
    let provided = bed.net.foreign_group(&bed.ec2, "keep-me").await;
    let subnet = bed.net.subnets[0].as_str();
    bed.create("gen", &[("vpce.hawser.io/subnet-ids", subnet)])
        .await;
    bed.create(
        "prov",
        &[
            ("vpce.hawser.io/subnet-ids", subnet),
            ("vpce.hawser.io/security-group-ids", &provided),
        ],
    )
    .await;
    bed.available("gen").await;
    bed.available("prov").await;
    assert!(bed.group_id("gen").await.is_some());
    assert_eq!(bed.net.live_endpoints(&bed.ec2).await.len(), 2);

    for name in ["gen", "prov"] {
        bed.services()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    bed.gone("gen").await;
    bed.gone("prov").await;
    assert!(
        bed.net.live_endpoints(&bed.ec2).await.is_empty(),
        "endpoints deleted"
    );
    assert_eq!(bed.group_id("gen").await, None, "generated group deleted");
    let groups = bed.net.groups(&bed.ec2).await;
    assert!(
        groups.iter().any(|(_, id)| *id == provided),
        "provided group kept: {groups:?}"
    );
    let reasons: Vec<String> = bed.events("gen").await.into_iter().map(|e| e.1).collect();
    assert!(reasons.contains(&"EndpointDeleted".into()), "{reasons:?}");
    assert!(
        reasons.contains(&"SecurityGroupDeleted".into()),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn retain_keeps_the_endpoint_and_group_and_says_so() {
    let bed = Bed::start("10m").await;
    bed.create(
        "keep",
        &[
            ("vpce.hawser.io/subnet-ids", &bed.net.subnets[0]),
            ("hawser.io/deletion-policy", "retain"),
        ],
    )
    .await;
    let svc = bed.available("keep").await;
    let id = ann(&svc, ENDPOINT_ID).unwrap().to_owned();
    let group = ann(&svc, GROUP_ID).unwrap().to_owned();
    bed.services()
        .delete("keep", &DeleteParams::default())
        .await
        .unwrap();
    bed.gone("keep").await;

    let live = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].vpc_endpoint_id(), Some(id.as_str()));
    let owner = format!("Service/{}/keep", bed.ns.name);
    assert_eq!(
        moto::tag(&live[0], "hawser.io/released-from"),
        Some(owner.as_str())
    );
    assert_eq!(
        moto::tag(&live[0], "hawser.io/owner"),
        None,
        "no longer owned"
    );
    assert_eq!(bed.group_id("keep").await, Some(group));
    let note = bed.wait_event("keep", "ResourcesRetained").await;
    assert!(note.contains(&id), "{note}");
}

#[tokio::test]
async fn an_endpoint_deleted_behind_hawsers_back_is_repaired_within_one_resync() {
    let resync = Duration::from_secs(5);
    let bed = Bed::start("5s").await;
    let old = ann(&bed.available_endpoint("db").await, ENDPOINT_ID)
        .unwrap()
        .to_owned();

    bed.ec2
        .delete_vpc_endpoints()
        .vpc_endpoint_ids(&old)
        .send()
        .await
        .unwrap();
    let deleted_at = std::time::Instant::now();
    // One resync plus the time a pass takes.
    let svc = eventually(
        "a new endpoint recorded",
        resync + Duration::from_secs(10),
        || async {
            let svc = bed.services().get("db").await.ok()?;
            let id = ann(&svc, ENDPOINT_ID)?;
            (id != old && ann(&svc, STATE) == Some("Available")).then_some(svc)
        },
    )
    .await;
    assert!(deleted_at.elapsed() < resync + Duration::from_secs(10));
    let live = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].vpc_endpoint_id(), ann(&svc, ENDPOINT_ID));
    let dns = live[0].dns_entries()[0].dns_name();
    assert_eq!(
        external_name(&svc).1,
        dns,
        "the Service follows the new endpoint"
    );
    let note = bed.wait_event("db", "DriftRepaired").await;
    assert!(note.contains(&old), "{note}");
}

#[tokio::test]
async fn killing_hawser_between_create_and_annotate_leaves_exactly_one_endpoint() {
    let mut bed = Bed::start_with("10m", &["--test-pause-after-create", "10m"]).await;
    bed.create("db", &[("vpce.hawser.io/subnet-ids", &bed.net.subnets[0])])
        .await;
    let created = eventually("the endpoint in moto", WAIT, || async {
        let live = bed.net.live_endpoints(&bed.ec2).await;
        live.first()
            .and_then(|e| e.vpc_endpoint_id().map(str::to_owned))
    })
    .await;
    let svc = bed.services().get("db").await.unwrap();
    assert_eq!(
        ann(&svc, ENDPOINT_ID),
        None,
        "killed before the endpoint was recorded"
    );

    bed.restart("10m", &[]).await;
    let svc = bed.available("db").await;
    let live = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(live.len(), 1, "exactly one endpoint: {live:?}");
    assert_eq!(ann(&svc, ENDPOINT_ID), Some(created.as_str()));
    assert_eq!(
        bed.aws_calls("CreateVpcEndpoint", "success").await,
        0.0,
        "adopted"
    );
    bed.wait_event("db", "EndpointAdopted").await;
}

#[tokio::test]
async fn twenty_services_at_once_converge_without_duplicates() {
    let bed = Bed::start("10m").await;
    let names: Vec<String> = (0..20).map(|i| format!("svc-{i}")).collect();
    let subnets = bed.net.subnets.join(",");
    let annotations = [("vpce.hawser.io/subnet-ids", subnets.as_str())];
    futures::future::join_all(names.iter().map(|n| bed.create(n, &annotations))).await;
    let mut ids = Vec::new();
    for name in &names {
        let svc = bed.available(name).await;
        ids.push(ann(&svc, ENDPOINT_ID).unwrap().to_owned());
    }
    let live = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(live.len(), 20, "one endpoint per Service");
    let mut unique_ids = ids.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(unique_ids.len(), 20);
    for (name, id) in names.iter().zip(&ids) {
        let e = live
            .iter()
            .find(|e| e.vpc_endpoint_id() == Some(id.as_str()))
            .unwrap();
        let owner = format!("Service/{}/{name}", bed.ns.name);
        assert_eq!(moto::tag(e, "hawser.io/owner"), Some(owner.as_str()));
    }
    let groups = bed.net.groups(&bed.ec2).await;
    assert_eq!(
        groups
            .iter()
            .filter(|(n, _)| n.starts_with("hawser-"))
            .count(),
        20
    );
}

#[tokio::test]
async fn an_aws_refusal_fails_once_with_awss_message() {
    let bed = Bed::start("10m").await;
    bed.create(
        "bad",
        &[("vpce.hawser.io/subnet-ids", "subnet-0123456789abcdef0")],
    )
    .await;
    let note = bed.wait_event("bad", "ProvisioningFailed").await;
    assert!(
        note.contains("subnet-0123456789abcdef0") && note.contains("does not exist"),
        "{note}"
    );
    let svc = bed.services().get("bad").await.unwrap();
    assert_eq!(ann(&svc, STATE), Some("Failed"));
    // Our own status write echoes back as a watch event; once that pass
    // has run (and skipped AWS), the create must not have been retried.
    let unchanged = r#"hawser_reconcile_total{controller="vpce",result="unchanged"}"#;
    eventually("the echo of the Failed write", WAIT, || async {
        (bed.hawser().metric(unchanged).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        bed.aws_calls("CreateVpcEndpoint", "not_found").await,
        1.0,
        "no hot loop"
    );
    // Fixing the annotation retries at once.
    bed.annotate("bad", "vpce.hawser.io/subnet-ids", &bed.net.subnets[0])
        .await;
    bed.available("bad").await;
}

#[tokio::test]
async fn removing_the_trigger_cleans_up_and_lets_go_of_the_service() {
    let bed = Bed::start("10m").await;
    bed.available_endpoint("db").await;
    let patch = serde_json::json!({"metadata": {"annotations": {
        "vpce.hawser.io/service-name": null, "vpce.hawser.io/subnet-ids": null}}});
    bed.services()
        .patch("db", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let svc = eventually("finalizer and outputs removed", WAIT, || async {
        let svc = bed.services().get("db").await.ok()?;
        (svc.finalizers().is_empty() && ann(&svc, STATE).is_none()).then_some(svc)
    })
    .await;
    assert_eq!(ann(&svc, ENDPOINT_ID), None);
    assert!(bed.net.live_endpoints(&bed.ec2).await.is_empty());
    assert_eq!(bed.group_id("db").await, None);
}

#[tokio::test]
async fn the_namespace_region_cannot_change_under_a_services_endpoint() {
    let (bed, _hooks) = Bed::start_with_hooks("10m").await;
    let svc = bed.available_endpoint("s3").await;
    let endpoint = ann(&svc, ENDPOINT_ID).unwrap().to_owned();

    let region = "aws.hawser.io/region=eu-west-1";
    let out = kubectl(&["annotate", "namespace", &bed.ns.name, region], "");
    assert!(!out.success, "the region change was admitted");
    let expected = format!(
        "annotation aws.hawser.io/region: invalid value \"eu-west-1\": 1 object(s) in this namespace hold AWS resources made with region unset (the controller's default), which would be left behind, running unseen: Service/s3 (endpoint {endpoint})"
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    // The region hawser already uses, spelled out, moves nothing.
    let same = format!("aws.hawser.io/region={}", moto::REGION);
    let out = kubectl(&["annotate", "namespace", &bed.ns.name, &same], "");
    assert!(out.success, "{}", out.stderr);

    // Once the endpoint is gone, the namespace may move.
    bed.services()
        .delete("s3", &Default::default())
        .await
        .unwrap();
    bed.gone("s3").await;
    let out = kubectl(
        &["annotate", "--overwrite", "namespace", &bed.ns.name, region],
        "",
    );
    assert!(out.success, "{}", out.stderr);
}

#[tokio::test]
async fn default_tags_are_on_the_endpoint_and_the_group_beside_hawsers_own() {
    let bed = Bed::start_with("10m", &["--default-tags", "team=platform,cost-center=42"]).await;
    let svc = bed.available_endpoint("tagged").await;
    let owner = format!("Service/{}/tagged", bed.ns.name);
    let uid = svc.uid().unwrap();
    let name = bed.group_name("tagged");
    let expected = [
        ("team", "platform"),
        ("cost-center", "42"),
        ("hawser.io/cluster", bed.cluster.as_str()),
        ("hawser.io/owner", owner.as_str()),
        ("hawser.io/uid", uid.as_str()),
        ("Name", name.as_str()),
    ];

    let live = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(live.len(), 1, "exactly one endpoint");
    for (key, value) in expected {
        assert_eq!(moto::tag(&live[0], key), Some(value), "endpoint tag {key}");
    }
    let group_id = ann(&svc, GROUP_ID).expect("generated group");
    let groups = bed
        .ec2
        .describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let group = &groups.security_groups()[0];
    for (key, value) in expected {
        let tag = group.tags().iter().find(|t| t.key() == Some(key));
        assert_eq!(tag.and_then(|t| t.value()), Some(value), "group tag {key}");
    }
    // Tagged by the create requests themselves.
    assert_eq!(bed.aws_calls("CreateTags", "success").await, 0.0);
}
