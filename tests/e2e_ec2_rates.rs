//! EC2's real request rates, which moto never enforces: the fault proxy
//! throttles every EC2 action with AWS's documented token buckets
//! (`bench/src/ec2_rates.rs`: CreateVpcEndpoint 4 tokens, 0.3 a second).
//! Services applied at once converge with none Failed and no duplicate,
//! through the SDK's retries and hawser's backoff. How close to the
//! buckets' minimum they come is a benchmark (BENCHMARKS.md), not a test.

use crate::support;

use std::time::Duration;

use support::{fault_proxy::FaultProxy, moto, vpce::*};

/// Three times the bucket of CreateVpcEndpoint, DeleteVpcEndpoints and
/// ModifyVpcEndpoint: most creates wait for a refilled token.
const N: usize = 12;

#[tokio::test]
async fn services_applied_at_once_converge_at_ec2s_documented_rates() {
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    proxy.at_ec2_rates();
    let bed = Bed::start_with("10m", &["--aws-endpoint-url", &proxy.url]).await;
    let names: Vec<String> = (0..N).map(|i| format!("rated-{i}")).collect();
    let subnet = [("vpce.hawser.io/subnet-ids", bed.net.subnets[0].as_str())];
    let started = std::time::Instant::now();
    futures::future::join_all(names.iter().map(|n| bed.create(n, &subnet))).await;

    // (12 - 4) / 0.3 = 27 s at the least; the deadline allows for
    // backoff, and the wait fails on the first Service marked Failed.
    let api = bed.services();
    support::eventually("every Service Available", Duration::from_secs(300), || {
        let api = api.clone();
        async move {
            let list = api.list(&Default::default()).await.ok()?;
            let states: Vec<Option<&str>> = list.items.iter().map(|s| ann(s, STATE)).collect();
            assert!(
                !states.contains(&Some("Failed")),
                "a Service was marked Failed: {states:?}"
            );
            states.iter().all(|s| *s == Some("Available")).then_some(())
        }
    })
    .await;
    let took = started.elapsed();
    bed.one_endpoint_each(&names, 0).await;
    assert_eq!(
        bed.net.live_endpoints(&bed.ec2).await.len(),
        N,
        "no duplicate"
    );

    // Each call hawser counts is a request AWS saw: the end of a
    // describe's pages is not one (it was counted once as a call).
    let counted = bed.aws_calls("DescribeVpcEndpoints", "success").await;
    let seen = f64::from(proxy.seen("DescribeVpcEndpoints"));
    assert!(
        counted >= 1.0 && counted <= seen,
        "hawser counted {counted} DescribeVpcEndpoints, the proxy saw {seen}"
    );

    let (refused, minimum) = proxy.ec2_rates();
    eprintln!("{N} Services in {took:?}; refused {refused:?}; bucket-limited minimum {minimum:?}");
    assert!(
        refused.get("CreateVpcEndpoint").copied().unwrap_or(0) > 0,
        "the buckets refused creates: {refused:?}"
    );
    // The buckets cannot be beaten: what they let through takes at least
    // their minimum, (12 - 4) / 0.3 s for the creates.
    assert!(
        minimum >= Duration::from_secs(26) && took >= minimum,
        "{took:?} for what the buckets allow in no less than {minimum:?}"
    );
}
