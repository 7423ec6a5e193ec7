//! One account's throttling does not spend another account's retries.
//!
//! The SDK's standard retry strategy keeps a retry quota per retry
//! partition: 500 tokens, 5 spent on each retry of a throttled attempt and
//! never given back while the calls keep failing; with the quota spent, a
//! throttled attempt is not retried and the call fails at once. hawser
//! keys the partition by (service, region, account). Here a proxy in front
//! of moto throttles every call made with a namespace role's credentials
//! until that account's EC2 quota is spent. Then one call in hawser's own
//! account is throttled three times: the SDK retries it inside the call
//! (the proxy sees attempts 1 to 4 of the same invocation), so hawser
//! never sees the error. With one partition per region shared by every account (as
//! before), the spent quota would refuse that retry: the call would end at
//! attempt 1 and hawser would make a new one.
//!
//! hawser watches every namespace here (two namespaces, two accounts;
//! `--namespace-selector` narrows what it acts on), so it would act on
//! objects other tests leave being deleted: `#[ignore]`d in the parallel
//! run, and run by hack/test.sh alone afterwards.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use support::{
    fault_proxy::FaultProxy,
    moto::{self, create_role, Network},
    vpce::{ann, SERVICE_NAME, STATE, WAIT},
    *,
};

fn service(name: &str, subnets: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "annotations": {
            "vpce.hawser.io/service-name": SERVICE_NAME,
            "vpce.hawser.io/subnet-ids": subnets,
        }},
        "spec": {"ports": [{"port": 443}]},
    }))
    .unwrap()
}

#[tokio::test]
#[ignore = "watches every namespace: hack/test.sh runs it alone, after the parallel tests"]
async fn an_accounts_throttling_does_not_spend_another_accounts_retries() {
    let client = client().await;
    let id = unique("budget");
    let role = create_role(&unique("throttled")).await;
    let throttled = TestNamespace::create(&client, &id, &[("aws.hawser.io/role-arn", &role)]).await;
    let own = TestNamespace::create(&client, &id, &[]).await;
    let net = Network::create(&moto::ec2()).await;
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let own_key = std::env::var("AWS_ACCESS_KEY_ID").expect("the test bed's AWS_ACCESS_KEY_ID");
    proxy.throttle_other_accounts(&own_key);
    let selector = format!("{E2E_LABEL}={id}");
    let hawser = Hawser::start(&[
        "--controllers=vpce",
        &format!("--cluster-name={}", unique("cluster")),
        &format!("--region={}", moto::REGION),
        &format!("--default-vpc-id={}", net.vpc_id),
        "--resync-period=10m",
        "--aws-endpoint-url",
        &proxy.url,
        "--aws-retry-mode=standard",
        "--aws-max-attempts=5",
        "--namespace-selector",
        &selector,
    ])
    .await;
    eventually("hawser to lead", Duration::from_secs(30), || async {
        (hawser.metric("hawser_leader").await == 1.0).then_some(())
    })
    .await;

    // 30 Services in the role's account: 16 reconciled at once, every call
    // throttled; each call's 4 retries spend 20 tokens.
    let api: Api<Service> = Api::namespaced(client.clone(), &throttled.name);
    for i in 0..30 {
        api.create(
            &PostParams::default(),
            &service(&format!("t-{i}"), "subnet-0123456789abcdef0"),
        )
        .await
        .unwrap();
    }
    // Spent once a call ended with fewer than its 5 attempts: the proxy
    // has throttled fewer requests than 5 per throttled call hawser saw.
    // (Calls still in flight only add requests, so this never holds early.)
    let (requests, calls) = eventually(
        "the role's account's retry quota to be spent",
        Duration::from_secs(180),
        || async {
            let calls = aws_calls_sum(&hawser.metrics().await, "ec2", "throttled");
            let requests = f64::from(proxy.others_throttled());
            (calls > 0.0 && requests < 5.0 * calls).then_some((requests, calls))
        },
    )
    .await;
    eprintln!("quota spent: {requests} throttled requests over {calls} throttled calls");

    // hawser's own account: its CreateVpcEndpoint (in one subnet of its
    // own, which nothing else asks for) is throttled once.
    let subnet = ("SubnetId.1", net.subnets[0].as_str());
    // Three times: the retries need 15 tokens, more than the few that
    // the own Service's successful first attempts give back to a quota.
    proxy.throttle_matching("CreateVpcEndpoint", subnet.0, subnet.1, 3);
    let own_api: Api<Service> = Api::namespaced(client.clone(), &own.name);
    own_api
        .create(&PostParams::default(), &service("own", subnet.1))
        .await
        .unwrap();
    eventually("the own account's Service Available", WAIT, || async {
        let s = own_api.get("own").await.ok()?;
        (ann(&s, STATE) == Some("Available")).then_some(())
    })
    .await;
    // The SDK retried the throttled attempts inside the same call (one
    // invocation id, attempts 1 to 4): its quota was untouched. A spent
    // quota would have ended the call at attempt 1, and hawser would have
    // made a new call (a new invocation id, attempt 1 again).
    let attempts = proxy.attempts_matching("CreateVpcEndpoint", subnet.0, subnet.1);
    assert!(
        attempts.len() >= 4,
        "three throttled attempts and one that got through: {attempts:?}"
    );
    let first = &attempts[0].0;
    let call: Vec<(&String, u32)> = attempts[..4].iter().map(|(id, n)| (id, *n)).collect();
    assert_eq!(
        call,
        [(first, 1), (first, 2), (first, 3), (first, 4)],
        "the throttled attempts were not retried inside their call: {attempts:?}"
    );
}
