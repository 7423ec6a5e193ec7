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
