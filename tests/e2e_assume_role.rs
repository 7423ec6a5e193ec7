//! Per-namespace account: a namespace's `aws.hawser.io/role-arn` makes the
//! VPC endpoint controller call EC2 with credentials from STS AssumeRole
//! (session `hawser-<namespace>`), so the endpoint is made in the role's
//! account.
//!
//! What moto proves and what it does not: moto's AssumeRole answers any
//! caller for any role (it checks neither that the role exists nor its
//! trust policy), and credentials it issued act in the role's account.
//! So an endpoint that exists in the role's account, and not in hawser's,
//! was created with the assumed credentials; and the AssumeRole requests
//! hawser sent, recorded by the test's proxy in front of moto, show the
//! session name and role. (moto's own dump of its state,
//! `/moto-api/data.json`, is no witness: read while other tests change
//! moto, it sometimes fails with a server error.)
//! Whether the role's trust policy admits hawser is not tested here.

use crate::support;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use support::fault_proxy::FaultProxy;
use support::moto::{self, Network};
use support::vpce::{ann, start_hawser, ENDPOINT_ID, STATE, WAIT};
use support::*;

use support::moto::{create_role, TENANT_ACCOUNT};

/// An EC2 client acting in the tenant account (assumed like hawser does).
async fn tenant_ec2(role_arn: &str) -> aws_sdk_ec2::Client {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(moto::endpoint_url())
        .load()
        .await;
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("e2e-reader")
        .configure(&base)
        .build()
        .await;
    let conf = base
        .to_builder()
        .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(
            provider,
        ))
        .build();
    aws_sdk_ec2::Client::new(&conf)
}

/// hawser for namespace `ns`, its AWS calls through `proxy`.
async fn behind(proxy: &FaultProxy, ns: &TestNamespace, net: &Network) -> Hawser {
    let args = ["--aws-endpoint-url", proxy.url.as_str()];
    start_hawser(&ns.name, &unique("cluster"), net, "1h", &args).await
}

/// Service `s3` asking for an endpoint in `subnet`; its namespace's Api.
async fn create_service(client: &kube::Client, ns: &str, subnet: &str) -> kube::Api<Service> {
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "s3", "annotations": {
            "vpce.hawser.io/service-name": support::vpce::SERVICE_NAME,
            "vpce.hawser.io/subnet-ids": subnet,
        }},
        "spec": {"ports": [{"port": 443}]},
    }))
    .unwrap();
    let services: kube::Api<Service> = kube::Api::namespaced(client.clone(), ns);
    services.create(&PostParams::default(), &svc).await.unwrap();
    services
}

#[tokio::test]
async fn a_namespace_role_creates_the_endpoint_in_the_roles_account() {
    let client = client().await;
    let role = create_role(&unique("tenant")).await;
    let tenant = tenant_ec2(&role).await;
    let net = Network::create(&tenant).await;
    let ns = TestNamespace::create(&client, "assume", &[("aws.hawser.io/role-arn", &role)]).await;
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let hawser = behind(&proxy, &ns, &net).await;

    let services = create_service(&client, &ns.name, &net.subnets[0]).await;
    let svc = eventually("the Service Available", WAIT, || async {
        let s = services.get("s3").await.ok()?;
        (ann(&s, STATE) == Some("Available")).then_some(s)
    })
    .await;

    // The endpoint is in the tenant account's VPC ...
    let live = net.live_endpoints(&tenant).await;
    assert_eq!(live.len(), 1);
    assert_eq!(ann(&svc, ENDPOINT_ID), live[0].vpc_endpoint_id());
    assert_eq!(live[0].owner_id(), Some(TENANT_ACCOUNT));
    // ... and hawser's own account has no such VPC at all.
    let own = moto::ec2()
        .describe_vpcs()
        .vpc_ids(&net.vpc_id)
        .send()
        .await;
    assert!(
        own.is_err(),
        "the VPC exists only in the tenant account: {own:?}"
    );

    // What hawser asked STS for: exactly this role, session hawser-<ns>.
    let assumed = proxy.requests("AssumeRole");
    let session = format!("hawser-{}", ns.name);
    assert!(!assumed.is_empty(), "no AssumeRole reached AWS");
    for request in &assumed {
        assert_eq!(
            (request.get("RoleArn"), request.get("RoleSessionName")),
            (Some(&role), Some(&session)),
            "{assumed:?}"
        );
    }

    let calls =
        r#"hawser_aws_api_calls_total{operation="AssumeRole",outcome="success",service="sts"}"#;
    let n = hawser.metric(calls).await;
    assert!(n >= 1.0, "{}", hawser.metrics().await);
    // Cached: one AssumeRole serves every call of the pass, not one each.
    let ec2_calls = r#"hawser_aws_api_calls_total{operation="CreateVpcEndpoint",outcome="success",service="ec2"}"#;
    assert_eq!(hawser.metric(ec2_calls).await, 1.0);
    assert_eq!(n, 1.0, "credentials are cached across calls");
}

/// AWS refuses the AssumeRole (a trust policy that does not admit
/// hawser): the Service says Failed, with a Warning Event naming the role
/// and AWS's reason, and the metric counts it; once IAM is fixed, the
/// backoff retry succeeds without touching the Service.
#[tokio::test]
async fn a_refused_assume_role_fails_the_service_and_recovers_when_iam_is_fixed() {
    let client = client().await;
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    proxy.deny_assume_role();
    let role = format!("arn:aws:iam::{TENANT_ACCOUNT}:role/{}", unique("untrusted"));
    let tenant = tenant_ec2(&role).await;
    let net = Network::create(&tenant).await;
    let ns = TestNamespace::create(&client, "refused", &[("aws.hawser.io/role-arn", &role)]).await;
    let hawser = behind(&proxy, &ns, &net).await;

    let services = create_service(&client, &ns.name, &net.subnets[0]).await;
    eventually("the Service Failed", WAIT, || async {
        let s = services.get("s3").await.ok()?;
        (ann(&s, STATE) == Some("Failed")).then_some(())
    })
    .await;
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(client.clone(), &ns.name);
    let note = eventually("Event AssumeRoleFailed", WAIT, || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("AssumeRoleFailed"))
            .and_then(|e| e.note)
    })
    .await;
    assert!(
        note.contains(&role) && note.contains("not authorized"),
        "{note}"
    );
    let errors = r#"hawser_reconcile_errors_total{category="aws_assume_role",controller="vpce"}"#;
    assert!(hawser.metric(errors).await >= 1.0);
    let refused =
        r#"hawser_aws_api_calls_total{operation="AssumeRole",outcome="error",service="sts"}"#;
    assert!(hawser.metric(refused).await >= 1.0);
    assert!(net.live_endpoints(&tenant).await.is_empty());

    proxy.heal("AssumeRole");
    eventually("the Service Available after the fix", WAIT, || async {
        let s = services.get("s3").await.ok()?;
        (ann(&s, STATE) == Some("Available")).then_some(())
    })
    .await;
    assert_eq!(net.live_endpoints(&tenant).await.len(), 1);
}
