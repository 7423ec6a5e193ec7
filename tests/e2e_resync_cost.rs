//! What a resync costs in AWS reads when nothing changed: a constant per
//! (account, region, resource kind), not one or two per object (issue 12).
//! Against the real apiserver and moto, hawser as the chart runs it.

use crate::support;

use std::time::{Duration, Instant};

use support::vpce::*;
use support::*;

/// Services idle in one scope.
const N: usize = 50;
/// `--resync-period`; a snapshot is reused for a quarter of it.
const RESYNC: Duration = Duration::from_secs(4);

#[tokio::test]
async fn idle_services_resync_with_a_constant_number_of_reads() {
    let bed = Bed::start(&format!("{}s", RESYNC.as_secs())).await;
    let names: Vec<String> = (0..N).map(|i| format!("idle-{i}")).collect();
    let subnet = [("vpce.hawser.io/subnet-ids", bed.net.subnets[0].as_str())];
    futures::future::join_all(names.iter().map(|n| bed.create(n, &subnet))).await;
    // moto slows as it fills up: the whole test bed's tests share it.
    let api = bed.services();
    eventually("every Service Available", Duration::from_secs(300), || {
        let api = api.clone();
        async move {
            let list = api.list(&Default::default()).await.ok()?;
            (list.items.len() == N
                && list
                    .items
                    .iter()
                    .all(|s| ann(s, STATE) == Some("Available")))
            .then_some(())
        }
    })
    .await;
    bed.one_endpoint_each(&names, 0).await;

    let applied = r#"hawser_reconcile_total{controller="vpce",result="applied"}"#;
    let reads = || async { describes(&bed.hawser().metrics().await) };
    let writes = || async {
        let text = bed.hawser().metrics().await;
        aws_calls_sum(&text, "ec2", "success") - describes(&text)
    };
    let errors = || async { vpce_errors(&bed.hawser().metrics().await) };
    let (before_applied, before_reads, before_writes, before_errors) = (
        bed.hawser().metric(applied).await,
        reads().await,
        writes().await,
        errors().await,
    );
    let started = Instant::now();
    // Three resyncs of every Service (each resync pass counts as applied).
    eventually(
        "three resyncs of every Service",
        Duration::from_secs(120),
        || async {
            let done = bed.hawser().metric(applied).await - before_applied;
            (done >= 3.0 * N as f64).then_some(())
        },
    )
    .await;
    let elapsed = started.elapsed();
    let read = reads().await - before_reads;
    assert_eq!(writes().await, before_writes, "no mutating call");
    // A failed pass looks for itself again: its reads would not be the
    // snapshots'.
    assert_eq!(errors().await, before_errors, "no pass failed");

    // Each kind's snapshots begin at least a reuse window (a quarter of
    // the resync) apart, so at most one per window begun in the time
    // measured, and one more already under way at the baseline; 50
    // endpoints and 50 groups are one page each. Passes are due all the
    // time, so nearly every window takes its snapshot. One describe of
    // each kind per Service, as before the snapshots, would be 2 x 50 per
    // resync, 300 for three.
    let windows = (elapsed.as_secs_f64() / (RESYNC.as_secs_f64() / 4.0)).ceil() + 2.0;
    let bound = 2.0 * windows;
    // Per round: each Service resynced once.
    let per_round = read / 3.0;
    eprintln!(
        "{N} idle Services: {read} reads in {elapsed:?} over three resync rounds, \
         {per_round:.1} per round; bound {bound}"
    );
    assert!(read >= 2.0, "the resyncs read: {read}");
    assert!(
        read <= bound,
        "{read} reads in {elapsed:?}: more than one look at each kind per reuse window ({bound})"
    );
    assert!(
        per_round < N as f64,
        "{per_round:.1} reads per resync round grow with the {N} Services"
    );
}

/// The EC2 describes that succeeded: the vpce controller makes only
/// DescribeVpcEndpoints and DescribeSecurityGroups.
fn describes(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("hawser_aws_api_calls_total{"))
        .filter(|l| l.contains(r#"service="ec2""#) && l.contains(r#"outcome="success""#))
        .filter(|l| l.contains(r#"operation="Describe"#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Failed vpce passes, all categories.
fn vpce_errors(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("hawser_reconcile_errors_total{"))
        .filter(|l| l.contains(r#"controller="vpce""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
