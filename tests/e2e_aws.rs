//! The AWS client layer against moto: one client set per (region, role),
//! the assumed role really used, and every call counted.

use crate::support;

use hawser::aws::{AwsClients, AwsSettings, Scope, StsApi};
use hawser::metrics::Metrics;

#[tokio::test]
async fn each_scope_gets_its_own_credentials_and_every_call_is_counted() {
    support::testenv_dir();
    let metrics = Metrics::new().unwrap();
    let settings = AwsSettings {
        region: Some(support::moto::REGION.into()),
        endpoint_url: Some(support::moto::endpoint_url()),
        ..Default::default()
    };
    let aws = AwsClients::load(&settings, &metrics).await.unwrap();
    assert_eq!(aws.default_region(), "us-west-2");

    let own = aws.sts(&aws.default_scope()).await;
    let me = own.caller_identity().await.unwrap();
    assert_eq!(me.account, "123456789012", "moto's default account");

    // moto switches the account when a role in another account is assumed.
    let role = Scope {
        region: "eu-west-1".into(),
        role_arn: Some("arn:aws:iam::111111111111:role/tenant".into()),
        session_name: None,
    };
    let tenant = aws.sts(&role).await.caller_identity().await.unwrap();
    assert_eq!(tenant.account, "111111111111");
    assert!(
        tenant.arn.contains("tenant/hawser"),
        "session name: {}",
        tenant.arn
    );

    let text = metrics.render();
    let calls = support::metric_value(
        &text,
        r#"hawser_aws_api_calls_total{operation="GetCallerIdentity",outcome="success",service="sts"}"#,
    );
    assert_eq!(calls, 2.0, "{text}");
}
