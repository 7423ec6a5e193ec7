//! hawser killed (SIGKILL) while it provisions and while it cleans up,
//! then started again: afterwards AWS holds exactly what the objects ask
//! for (no duplicate, no orphan) and every finalizer is resolved. Each
//! kill comes once the work has begun in AWS (a first endpoint or stack
//! made, or a first one deleted) plus a random 0 to 300 ms, and each round
//! prints how far the work had got. Iterations: `HAWSER_E2E_RESTARTS`
//! (default 1, as `.ci/run` runs it; RELIABILITY.md has a run of 20).

use crate::support;

use std::time::Duration;

use kube::api::DeleteParams;
use support::{moto, unique};

fn iterations() -> usize {
    std::env::var("HAWSER_E2E_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Waits until `begun` says the work has begun in AWS, then a random 0 to
/// 300 ms more: the kill lands while AWS is being changed, at a different
/// point each round.
async fn mid_work<F, Fut>(what: &str, begun: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    support::eventually(what, Duration::from_secs(60), || async {
        begun().await.then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..300))).await;
}

/// Waits until `hawser` holds the Lease: its controllers run from then.
async fn leading(hawser: &support::Hawser) {
    support::eventually("hawser to lead", Duration::from_secs(30), || async {
        (hawser.metric("hawser_leader").await == 1.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn vpce_killed_mid_create_and_mid_delete_leaves_no_duplicate_or_orphan() {
    use support::vpce::*;
    let mut bed = Bed::start("10m").await;
    leading(bed.hawser()).await;
    let subnets = bed.net.subnets.join(",");
    let annotations = [("vpce.hawser.io/subnet-ids", subnets.as_str())];
    let (net, ec2, cluster) = (bed.net.clone(), bed.ec2.clone(), bed.cluster.clone());
    let endpoints = || {
        let (net, ec2, cluster) = (net.clone(), ec2.clone(), cluster.clone());
        async move {
            let live = net.live_endpoints(&ec2).await;
            let ours = |e: &&aws_sdk_ec2::types::VpcEndpoint| {
                moto::tag(e, "hawser.io/cluster") == Some(cluster.as_str())
            };
            live.iter().filter(ours).count()
        }
    };
    let groups = || {
        let (net, ec2) = (net.clone(), ec2.clone());
        async move {
            let groups = net.groups(&ec2).await;
            groups
                .iter()
                .filter(|(n, _)| n.starts_with("hawser-"))
                .count()
        }
    };
    for round in 0..iterations() {
        let names: Vec<String> = (0..10).map(|i| format!("r{round}-svc-{i}")).collect();
        futures::future::join_all(names.iter().map(|n| bed.create(n, &annotations))).await;
        mid_work("a first endpoint", || async { endpoints().await > 0 }).await;
        let made = endpoints().await;
        bed.restart("10m", &[]).await;
        leading(bed.hawser()).await;
        bed.one_endpoint_each(&names, round).await;
        support::eventually("one endpoint and one group per Service", WAIT, || async {
            (endpoints().await == names.len() && groups().await == names.len()).then_some(())
        })
        .await;

        let api = bed.services();
        for name in &names {
            api.delete(name, &DeleteParams::default())
                .await
                .expect("delete Service");
        }
        mid_work("a first endpoint deleted", || async {
            endpoints().await < names.len()
        })
        .await;
        let left = endpoints().await;
        bed.restart("10m", &[]).await;
        leading(bed.hawser()).await;
        for name in &names {
            bed.gone(name).await;
        }
        support::eventually("no endpoint or group left", WAIT, || async {
            (endpoints().await == 0 && groups().await == 0).then_some(())
        })
        .await;
        eprintln!(
            "vpce round {round}: killed with {made}/10 endpoints made, then with {left}/10 not yet deleted"
        );
    }
}

#[tokio::test]
async fn stacks_killed_mid_create_and_mid_delete_leave_no_duplicate_or_orphan() {
    use support::stack::*;
    let mut bed = Bed::start("10m").await;
    leading(bed.hawser()).await;
    let (cfn, cluster) = (bed.cfn.clone(), bed.cluster.clone());
    let ours = || {
        let (cfn, cluster) = (cfn.clone(), cluster.clone());
        async move {
            let out = cfn.describe_stacks().send().await.expect("DescribeStacks");
            let mut names: Vec<String> = out
                .stacks()
                .iter()
                .filter(|s| tag(s, "hawser.io/cluster") == Some(cluster.as_str()))
                .filter(|s| status(s) != "DELETE_COMPLETE")
                .map(|s| s.stack_name().unwrap_or_default().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    for round in 0..iterations() {
        let names: Vec<String> = (0..3).map(|i| format!("r{round}-app-{i}")).collect();
        for name in &names {
            let parameters = format!(r#"{{"QueueName":"{}"}}"#, unique("q"));
            bed.create_deployment(
                name,
                &[
                    ("cfn.hawser.io/template", QUEUE_TEMPLATE),
                    ("cfn.hawser.io/parameters", &parameters),
                ],
            )
            .await;
        }
        mid_work("a first stack", || async { !ours().await.is_empty() }).await;
        let made = ours().await.len();
        bed.restart().await;
        leading(bed.hawser()).await;
        for name in &names {
            bed.deployment_where(name, "stack-status CREATE_COMPLETE", |a| {
                ann(a, STACK_STATUS) == Some("CREATE_COMPLETE")
            })
            .await;
        }
        let mut wanted: Vec<String> = names.iter().map(|n| bed.stack_name(Some(n))).collect();
        wanted.sort();
        assert_eq!(
            ours().await,
            wanted,
            "round {round}: one stack per Deployment"
        );

        let api = bed.deployments();
        for name in &names {
            api.delete(name, &DeleteParams::default())
                .await
                .expect("delete Deployment");
        }
        mid_work("a first stack deleted", || async {
            ours().await.len() < names.len()
        })
        .await;
        let left = ours().await.len();
        bed.restart().await;
        leading(bed.hawser()).await;
        for name in &names {
            bed.deployment_gone(name).await;
        }
        support::eventually("no stack left", WAIT, || async {
            ours().await.is_empty().then_some(())
        })
        .await;
        eprintln!(
            "stack round {round}: killed with {made}/3 stacks made, then with {left}/3 not yet deleted"
        );
    }
}
