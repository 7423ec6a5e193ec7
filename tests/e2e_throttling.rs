//! AWS throttling, which moto never does, injected by a proxy in front of
//! it: the real SDK client retries with backoff, hawser backs off when the
//! SDK gives up, and the endpoint is created exactly once.

use crate::support;

use std::time::Duration;

use support::{fault_proxy::FaultProxy, moto, vpce::*};

const CREATE: &str = "CreateVpcEndpoint";

/// Waits for `name` to be Available for up to `within`.
async fn available_within(
    bed: &Bed,
    name: &str,
    within: Duration,
) -> k8s_openapi::api::core::v1::Service {
    let api = bed.services();
    support::eventually(&format!("Service {name} Available"), within, || {
        let api = api.clone();
        async move {
            let svc = api.get(name).await.ok()?;
            (ann(&svc, STATE) == Some("Available")).then_some(svc)
        }
    })
    .await
}

async fn one_endpoint_named_by(bed: &Bed, svc: &k8s_openapi::api::core::v1::Service) {
    let endpoints = bed.net.live_endpoints(&bed.ec2).await;
    assert_eq!(
        endpoints.len(),
        1,
        "retries made a duplicate: {endpoints:?}"
    );
    assert_eq!(
        endpoints[0].vpc_endpoint_id(),
        ann(svc, ENDPOINT_ID),
        "the Service names another endpoint"
    );
}

/// More throttling than one call's attempts: the SDK gives up, hawser
/// records the throttled call, backs the object off and tries again.
#[tokio::test]
async fn throttling_past_the_sdks_attempts_is_retried_by_hawser() {
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    // 5 attempts per call: hawser's first call gives up after 5 throttled
    // attempts; its retry succeeds on its 4th attempt.
    proxy.throttle(CREATE, 8);
    let bed = Bed::start_with(
        "10m",
        &[
            "--aws-endpoint-url",
            &proxy.url,
            "--aws-retry-mode=standard",
            "--aws-max-attempts=5",
        ],
    )
    .await;
    bed.create("svc", &[("vpce.hawser.io/subnet-ids", &bed.net.subnets[0])])
        .await;
    let svc = available_within(&bed, "svc", Duration::from_secs(90)).await;

    assert_eq!(proxy.throttled(CREATE), 8, "throttled answers given");
    assert_eq!(
        proxy.seen(CREATE),
        9,
        "8 throttled attempts, then 1 passed on"
    );
    assert_eq!(
        bed.aws_calls(CREATE, "throttled").await,
        1.0,
        "hawser's first call, after the SDK's 5 attempts"
    );
    assert_eq!(bed.aws_calls(CREATE, "success").await, 1.0);
    one_endpoint_named_by(&bed, &svc).await;
}

/// The default, adaptive mode: after a throttle the client-side limiter
/// holds the retry back well beyond standard mode's first backoff (at
/// most 1 s with the SDK's defaults).
#[tokio::test]
async fn adaptive_mode_holds_a_throttled_retry_back() {
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    proxy.throttle(CREATE, 1);
    let bed = Bed::start_with("10m", &["--aws-endpoint-url", &proxy.url]).await;
    bed.create("svc", &[("vpce.hawser.io/subnet-ids", &bed.net.subnets[0])])
        .await;
    let svc = available_within(&bed, "svc", Duration::from_secs(120)).await;

    let at = proxy.arrivals(CREATE);
    assert_eq!(at.len(), 2, "one throttled attempt, one passed on");
    let held = at[1] - at[0];
    eprintln!("adaptive mode retried {held:?} after the throttle");
    assert!(held > Duration::from_secs(2), "retried after only {held:?}");
    assert_eq!(bed.aws_calls(CREATE, "success").await, 1.0);
    assert_eq!(bed.aws_calls(CREATE, "throttled").await, 0.0);
    one_endpoint_named_by(&bed, &svc).await;
}

/// AWS on a bad day for two minutes: 30 % of every EC2 request throttled,
/// 10 % of those let through answered 500 after moto acted (the answer
/// lost), 10 % of the rest cut off mid-answer by a dropped connection,
/// 10 % of the rest hung up on before any answer, 50 ms added to each, while ten Services ask for endpoints. No
/// Service is ever marked Failed; once the storm is over every one is
/// Available with exactly one endpoint and one group.
#[tokio::test]
async fn a_two_minute_storm_converges_with_none_failed_and_no_duplicates() {
    const STORM: Duration = Duration::from_secs(120);
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let bed = Bed::start_with("20s", &["--aws-endpoint-url", &proxy.url]).await;
    let started = std::time::Instant::now();
    proxy.storm(support::fault_proxy::Storm {
        throttle: 0.3,
        lose_answer: 0.1,
        drop_connection: 0.1,
        hang_up: 0.1,
        latency: Duration::from_millis(50),
        until: started + STORM,
    });
    let names: Vec<String> = (0..10).map(|i| format!("svc-{i}")).collect();
    let subnets = bed.net.subnets.join(",");
    let annotations = [("vpce.hawser.io/subnet-ids", subnets.as_str())];
    futures::future::join_all(names.iter().map(|n| bed.create(n, &annotations))).await;

    // Through the storm: never a Failed Service.
    let api = bed.services();
    while started.elapsed() < STORM {
        let list = api.list(&Default::default()).await.expect("list Services");
        let failed: Vec<String> = list
            .items
            .iter()
            .filter(|s| ann(s, STATE) == Some("Failed"))
            .map(kube::ResourceExt::name_any)
            .collect();
        assert!(failed.is_empty(), "marked Failed in the storm: {failed:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let faults = proxy.storm_faults();
    eprintln!("storm: {faults:?}");
    assert!(
        faults.throttled > 10 && faults.lost >= 1 && faults.cut_off >= 1 && faults.hung_up >= 1,
        "not every kind of fault was met: {faults:?}"
    );

    let mut ids = Vec::new();
    for name in &names {
        let svc = available_within(&bed, name, Duration::from_secs(90)).await;
        ids.push(ann(&svc, ENDPOINT_ID).unwrap().to_owned());
    }
    // Duplicates made by a lost answer are deleted by hawser; give the
    // deletions their pass.
    let live = support::eventually(
        "one endpoint per Service",
        Duration::from_secs(60),
        || async {
            let live = bed.net.live_endpoints(&bed.ec2).await;
            (live.len() == names.len()).then_some(live)
        },
    )
    .await;
    for id in &ids {
        assert!(
            live.iter()
                .any(|e| e.vpc_endpoint_id() == Some(id.as_str())),
            "{id} is not live"
        );
    }
    let groups = support::eventually("one group per Service", Duration::from_secs(60), || async {
        let groups = bed.net.groups(&bed.ec2).await;
        let ours = groups
            .iter()
            .filter(|(n, _)| n.starts_with("hawser-"))
            .count();
        (ours == names.len()).then_some(ours)
    })
    .await;
    assert_eq!(groups, names.len());
}
