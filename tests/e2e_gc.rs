//! `hawser gc` and `--gc-period` against the real apiserver and moto: what
//! a force-deleted Service and Deployment left behind goes; another
//! cluster's resources, released ones (`hawser.io/deletion-policy:
//! retain`) and those still in use stay.

use crate::support;

use std::process::Command;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification, VpcEndpointType};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};
use support::*;

/// `hawser gc <args>` as an operator runs it: the test bed's kubeconfig
/// (its admin's) and moto; returns (exit code, stdout).
fn gc(args: &[&str]) -> (i32, String) {
    let out = Command::new(hawser_bin())
        .arg("gc")
        .args(args)
        .args(["--aws-endpoint-url", &moto::endpoint_url()])
        .args(["--region", moto::REGION])
        .output()
        .expect("run hawser gc");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "hawser gc was killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), stdout)
}

/// The resources a JSON report calls garbage: (resource, id, action).
fn garbage(report: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = report["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["garbage"] == true)
        .map(|r| {
            (
                r["resource"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Removes the object's finalizers and deletes it: hawser (stopped) never
/// sees it go, so what it made stays in AWS.
async fn force_delete<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"finalizers": null}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("remove the finalizers");
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete");
}

#[tokio::test]
async fn gc_deletes_what_force_deleted_objects_left_and_leaves_the_rest() {
    use support::vpce::{ann, Bed as VpceBed, ENDPOINT_ID, GROUP_ID};
    let mut v = VpceBed::start("10m").await;
    let subnet = v.net.subnets[0].clone();
    for name in ["gone", "live"] {
        v.create(name, &[("vpce.hawser.io/subnet-ids", &subnet)])
            .await;
    }
    v.create(
        "kept",
        &[
            ("vpce.hawser.io/subnet-ids", &subnet),
            ("hawser.io/deletion-policy", "retain"),
        ],
    )
    .await;
    let mut ids = std::collections::BTreeMap::new();
    for name in ["gone", "live", "kept"] {
        let svc = v.available(name).await;
        ids.insert(
            name,
            (
                ann(&svc, ENDPOINT_ID).unwrap().to_owned(),
                ann(&svc, GROUP_ID).unwrap().to_owned(),
            ),
        );
    }
    v.services()
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    v.gone("kept").await;

    let mut s = support::stack::Bed::start("10m").await;
    let template = support::stack::QUEUE_TEMPLATE;
    for (name, policy) in [("web", "delete"), ("api", "retain")] {
        let params = format!(r#"{{"QueueName":"{}"}}"#, unique(name));
        s.create_deployment(
            name,
            &[
                ("cfn.hawser.io/template", template),
                ("cfn.hawser.io/parameters", &params),
                ("hawser.io/deletion-policy", policy),
            ],
        )
        .await;
        s.deployment_where(name, "CREATE_COMPLETE", |a| {
            a.get(support::stack::STACK_STATUS).map(String::as_str) == Some("CREATE_COMPLETE")
        })
        .await;
    }
    s.deployments()
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    s.wait_event("Deployment", "api", "StackRetained").await;
    let (web_stack, api_stack) = (s.stack_name(Some("web")), s.stack_name(Some("api")));

    // hawser goes (a crash, an uninstall), then someone force-deletes.
    v.stop();
    s.stop();
    force_delete(&v.services(), "gone").await;
    v.gone("gone").await;
    force_delete(&s.deployments(), "web").await;
    s.deployment_gone("web").await;

    // --dry-run names exactly the Service's endpoint and group.
    let (code, out) = gc(&[
        "--cluster-name",
        &v.cluster,
        "--older-than",
        "0s",
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).expect("a JSON report");
    let (gone_e, gone_g) = ids["gone"].clone();
    assert_eq!(
        garbage(&report),
        [
            (
                "security-group".to_owned(),
                gone_g.clone(),
                "would-delete".to_owned()
            ),
            (
                "vpc-endpoint".to_owned(),
                gone_e.clone(),
                "would-delete".to_owned()
            ),
        ]
    );
    let live = v.net.live_endpoints(&v.ec2).await;
    assert_eq!(live.len(), 3, "a dry run deletes nothing");

    // The real run deletes them, and only them.
    let (code, out) = gc(&["--cluster-name", &v.cluster, "--older-than", "0s"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "deleted: vpc-endpoint {gone_e} in {}",
            moto::REGION
        )),
        "{out}"
    );
    // The released endpoint and group.
    assert!(
        out.contains("kept 2: released by hawser.io/deletion-policy: retain"),
        "{out}"
    );
    let mut live: Vec<String> = v
        .net
        .live_endpoints(&v.ec2)
        .await
        .iter()
        .filter_map(|e| e.vpc_endpoint_id().map(str::to_owned))
        .collect();
    live.sort();
    let mut want = vec![ids["live"].0.clone(), ids["kept"].0.clone()];
    want.sort();
    assert_eq!(live, want);
    let groups: Vec<String> = v
        .net
        .groups(&v.ec2)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(!groups.contains(&gone_g), "{groups:?}");
    assert!(
        groups.contains(&ids["live"].1) && groups.contains(&ids["kept"].1),
        "{groups:?}"
    );
    // Another cluster's orphaned stack was not this run's to touch.
    assert!(s.stack(&web_stack).await.is_some());

    // The stack bed's cluster: the force-deleted Deployment's stack goes,
    // the retained one stays.
    let (code, out) = gc(&[
        "--cluster-name",
        &s.cluster,
        "--older-than",
        "0s",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let web = s.stack(&web_stack).await;
    let gone_stacks = garbage(&report);
    assert_eq!(gone_stacks.len(), 1, "{gone_stacks:?}");
    assert_eq!(gone_stacks[0].0, "stack");
    assert_eq!(gone_stacks[0].2, "delete-started");
    assert!(
        web.is_none()
            || web
                .as_ref()
                .and_then(|w| w.stack_status())
                .is_some_and(|st| st.as_str().starts_with("DELETE")),
        "{web:?}"
    );
    let kept = s.stack(&api_stack).await.expect("the retained stack stays");
    assert!(!kept.stack_status().unwrap().as_str().starts_with("DELETE"));
    let retained = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == api_stack.as_str())
        .expect("the retained stack is listed");
    assert_eq!(retained["reason"], "released");
    // hawser is gone: nothing would release the namespace's last Service.
    force_delete(&v.services(), "live").await;
}

#[tokio::test]
async fn gc_period_deletes_an_orphan_of_its_namespace_only_and_counts_it() {
    use support::vpce::{Bed as VpceBed, SERVICE_NAME};
    let v = VpceBed::start_with("10m", &["--gc-period", "2s"]).await;
    let subnet = v.net.subnets[0].clone();
    let live = v.available_endpoint("db").await;
    let live_id = support::vpce::ann(&live, support::vpce::ENDPOINT_ID)
        .unwrap()
        .to_owned();

    // Left by a Service of this namespace that is gone, and by one of a
    // namespace this hawser does not watch.
    let orphan = |owner: String| {
        let ec2 = v.ec2.clone();
        let (vpc, subnet, cluster) = (v.net.vpc_id.clone(), subnet.clone(), v.cluster.clone());
        async move {
            let tags = [
                ("hawser.io/cluster", cluster.as_str()),
                ("hawser.io/owner", owner.as_str()),
                ("hawser.io/uid", "00000000-0000-0000-0000-000000000000"),
            ];
            let mut spec = TagSpecification::builder().resource_type(ResourceType::VpcEndpoint);
            for (k, v) in tags {
                spec = spec.tags(Tag::builder().key(k).value(v).build());
            }
            ec2.create_vpc_endpoint()
                .vpc_endpoint_type(VpcEndpointType::Interface)
                .vpc_id(vpc)
                .service_name(SERVICE_NAME)
                .subnet_ids(subnet)
                .tag_specifications(spec.build())
                .send()
                .await
                .expect("CreateVpcEndpoint")
                .vpc_endpoint()
                .and_then(|e| e.vpc_endpoint_id())
                .unwrap()
                .to_owned()
        }
    };
    let mine = orphan(format!("Service/{}/ghost", v.ns.name)).await;
    let theirs = orphan("Service/not-watched/ghost".to_owned()).await;

    let live_ids = || async {
        v.net
            .live_endpoints(&v.ec2)
            .await
            .iter()
            .filter_map(|e| e.vpc_endpoint_id().map(str::to_owned))
            .collect::<Vec<String>>()
    };
    eventually(
        "the orphan deleted by --gc-period",
        support::vpce::WAIT,
        || async { Some(live_ids().await).filter(|live| !live.contains(&mine)) },
    )
    .await;
    let live = live_ids().await;
    assert!(
        live.contains(&live_id) && live.contains(&theirs),
        "{live:?}"
    );
    let deleted = v
        .hawser()
        .metric(r#"hawser_gc_resources_total{resource="vpc-endpoint",result="deleted"}"#)
        .await;
    assert_eq!(deleted, 1.0);
}
