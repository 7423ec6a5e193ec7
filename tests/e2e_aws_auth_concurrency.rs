//! Fifty namespaces mapping roles at once while another writer edits
//! aws-auth: no entry of either side is lost, on the way in or out.

use crate::support;

use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{api::PostParams, Api};
use support::namespace::*;
use support::*;

const NAMESPACES: usize = 50;
const FOREIGN_EDITS: usize = 30;

/// Another writer: appends `count` entries of its own to mapRoles, one
/// read-modify-write each, pinned to the version read and retried on 409
/// as any careful client (kubectl edit, eksctl) would.
async fn other_writer(api: Api<ConfigMap>, name: String, tag: &'static str, count: usize) -> u32 {
    let mut conflicts = 0;
    for i in 0..count {
        loop {
            let mut cm = api.get(&name).await.expect("get aws-auth");
            let data = cm.data.get_or_insert_with(Default::default);
            let roles = data.entry("mapRoles".into()).or_default();
            if !roles.is_empty() && !roles.ends_with('\n') {
                roles.push('\n');
            }
            roles.push_str(&format!(
                "- rolearn: arn:aws:iam::222222222222:role/{tag}-{i}\n  username: {tag}-{i}\n  groups:\n  - {tag}\n"
            ));
            let users = data.entry("mapUsers".into()).or_default();
            users.push_str(&format!(
                "- userarn: arn:aws:iam::222222222222:user/{tag}-{i}\n  username: {tag}-{i}\n"
            ));
            match api.replace(&name, &PostParams::default(), &cm).await {
                Ok(_) => break,
                Err(kube::Error::Api(e)) if e.code == 409 => conflicts += 1,
                Err(e) => panic!("other writer: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conflicts
}

fn foreign_arns(tag: &str) -> Vec<String> {
    (0..FOREIGN_EDITS)
        .map(|i| format!("arn:aws:iam::222222222222:role/{tag}-{i}"))
        .collect()
}

#[tokio::test]
async fn fifty_namespaces_and_another_writer_lose_no_entry() {
    let mut bed = Bed::start("conc", &[]).await;
    bed.seed_aws_auth(&[("mapRoles", NODE_ROLES), ("mapUsers", MAP_USERS)])
        .await;
    let arns: Vec<String> = (0..NAMESPACES)
        .map(|i| role_arn(&format!("{}-{i}", bed.id)))
        .collect();

    // In: 50 namespaces created together, while the other writer writes.
    let started = Instant::now();
    let writer = tokio::spawn(other_writer(
        bed.configmaps(),
        bed.aws_auth.clone(),
        "in",
        FOREIGN_EDITS,
    ));
    let mut names = Vec::new();
    {
        let client = bed.client.clone();
        let id = bed.id.clone();
        let created =
            join_all(arns.iter().map(|arn| {
                let (client, id, arn) = (client.clone(), id.clone(), arn.clone());
                async move {
                    TestNamespace::create(&client, &id, &[("iam.hawser.io/role-arn", &arn)]).await
                }
            }))
            .await;
        for ns in created {
            names.push(ns.name.clone());
            bed.adopt(ns);
        }
    }
    let in_conflicts = writer.await.unwrap();
    let roles = bed
        .wait_map_roles("all 50 hawser entries and the other writer's", |r| {
            arns.iter().all(|a| entry_for(r, a).is_some())
                && foreign_arns("in").iter().all(|a| entry_for(r, a).is_some())
        })
        .await;
    let mapped_in = started.elapsed();
    assert_eq!(roles.len(), 1 + NAMESPACES + FOREIGN_EDITS, "no duplicates");
    let text = bed.data("mapRoles").await.unwrap();
    assert!(text.starts_with(NODE_ROLES), "the node role kept its bytes");
    let users = bed.data("mapUsers").await.unwrap();
    assert!(users.starts_with(MAP_USERS));
    assert_eq!(users.matches("user/in-").count(), FOREIGN_EDITS);
    let cm = bed.aws_auth().await.unwrap();
    assert_eq!(ownership(&cm).len(), NAMESPACES);

    // Out: all 50 deleted together, while the other writer writes again.
    let started_out = Instant::now();
    let writer = tokio::spawn(other_writer(
        bed.configmaps(),
        bed.aws_auth.clone(),
        "out",
        FOREIGN_EDITS,
    ));
    join_all(names.iter().map(|n| bed.delete_namespace(n))).await;
    let out_conflicts = writer.await.unwrap();
    let roles = bed
        .wait_map_roles("hawser's entries gone, everyone else's kept", |r| {
            arns.iter().all(|a| entry_for(r, a).is_none())
                && foreign_arns("out")
                    .iter()
                    .all(|a| entry_for(r, a).is_some())
        })
        .await;
    join_all(names.iter().map(|n| bed.gone(n))).await;
    let unmapped = started_out.elapsed();
    assert_eq!(roles.len(), 1 + 2 * FOREIGN_EDITS);
    assert!(foreign_arns("in")
        .iter()
        .all(|a| entry_for(&roles, a).is_some()));
    assert!(bed.data("mapRoles").await.unwrap().starts_with(NODE_ROLES));
    assert!(ownership(&bed.aws_auth().await.unwrap()).is_empty());

    let metric = |result: &str| format!(r#"hawser_aws_auth_writes_total{{result="{result}"}}"#);
    let (written, conflicts) = (
        bed.hawser().metric(&metric("written")).await,
        bed.hawser().metric(&metric("conflict")).await,
    );
    eprintln!(
        "measured: {NAMESPACES} namespaces mapped in {mapped_in:?}, unmapped and deleted in {unmapped:?}; \
         hawser wrote aws-auth {written} times with {conflicts} conflicts; the other writer retried {in_conflicts}+{out_conflicts} conflicts"
    );
    assert!(
        written < (2 * NAMESPACES) as f64,
        "batched: {written} writes"
    );
}
