//! Installed as users install it, against the real apiserver:
//! - `helm install` with the chart's defaults blocks no write while hawser
//!   is not running; hawser started exactly as the rendered Deployment
//!   says (args, env, ports, probes) activates its webhooks by itself, and
//!   the same Deployment then comes back hardened;
//! - a permission the chart lacks is reported (Event and log), not a hang.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    apps::v1::Deployment,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api,
};
use serde_json::{json, Value};
use support::install::{AsDeployed, Launch, Release, Until};
use support::*;

pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The chart's defaults, but for what this machine needs: the apiserver
/// reaches hawser on loopback (no pod network here), on ports of the
/// test's own, and only for the test's namespace `id` (tests share the
/// apiserver).
pub(crate) fn on_loopback(id: &str) -> Vec<String> {
    let (webhook_port, admin_port) = (free_port(), free_port());
    vec![
        format!("webhook.url=https://127.0.0.1:{webhook_port}"),
        "certs.ipAddresses={127.0.0.1}".into(),
        format!("webhook.port={webhook_port}"),
        format!("admin.port={admin_port}"),
        format!("webhook.namespaceSelector.matchLabels.{E2E_LABEL}={id}"),
    ]
}

pub(crate) fn webhook_config_name(manifest: &[Value]) -> String {
    manifest
        .iter()
        .find(|d| d["kind"] == "MutatingWebhookConfiguration")
        .expect("the chart registers its webhooks")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `write(dry_run)` of the Deployment `app` comes back hardened, and so
/// is what is stored. The apiserver sees changed webhook configurations
/// within moments: dry runs until one is hardened, then the real write.
pub(crate) async fn comes_back_hardened<F, Fut>(
    deployments: &Api<Deployment>,
    hawser: &AsDeployed,
    write: F,
) where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = kube::Result<Deployment>>,
{
    eventually(
        "the apiserver to call the activated webhook",
        WAIT,
        || async { (privileged(&write(true).await.ok()?) == Some(false)).then_some(()) },
    )
    .await;
    let written = write(false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", hawser.log()));
    assert_eq!(privileged(&written), Some(false), "{}", hawser.log());
    let stored = deployments.get("app").await.unwrap();
    assert_eq!(privileged(&stored), Some(false));
}

pub(crate) fn app(namespace: &str) -> Deployment {
    let mut d = probe_deployment(namespace);
    d.metadata.name = Some("app".into());
    d
}

pub(crate) fn privileged(d: &Deployment) -> Option<bool> {
    d.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .security_context
        .as_ref()?
        .privileged
}

/// The namespaceSelector of every hawser entry (not the aws-auth guard's).
pub(crate) async fn selectors(client: &kube::Client, name: &str) -> Vec<Value> {
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(name)
        .await
        .unwrap();
    let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(name)
        .await
        .unwrap();
    let mut out: Vec<Value> = m
        .webhooks
        .unwrap_or_default()
        .iter()
        .map(|w| serde_json::to_value(&w.namespace_selector).unwrap())
        .collect();
    out.extend(
        v.webhooks
            .unwrap_or_default()
            .iter()
            .filter(|w| !w.name.starts_with("aws-auth-guard"))
            .map(|w| serde_json::to_value(&w.namespace_selector).unwrap()),
    );
    out
}

/// Waits until no hawser entry has its `inert` selector any more; the
/// selectors then.
pub(crate) async fn activated(
    client: &kube::Client,
    config_name: &str,
    inert: &[Value],
) -> Vec<Value> {
    eventually("hawser to activate its webhooks", WAIT, || async {
        let now = selectors(client, config_name).await;
        now.iter().all(|s| !inert.contains(s)).then_some(now)
    })
    .await
}

#[tokio::test]
async fn a_default_install_blocks_nothing_until_hawser_serves_then_hardens() {
    let client = client().await;
    let id = unique("install");
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let home = TestNamespace::create(&client, &unique("install-home"), &[]).await;
    let release = Release::install(&unique("hawser"), &home.name, &on_loopback(&id));
    let manifest = release.manifest();
    let config_name = webhook_config_name(&manifest);

    // hawser is not running: an ordinary (privileged) Deployment goes in
    // untouched, although both webhooks are registered with failurePolicy Fail.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let created = deployments
        .create(&PostParams::default(), &app(&ns.name))
        .await
        .expect("a write while hawser is not running");
    assert_eq!(privileged(&created), Some(true), "mutated by nobody");
    let inert = selectors(&client, &config_name).await;
    assert_eq!(inert.len(), 2, "{inert:?}");

    // hawser as the Deployment runs it: self-managed certificates, no
    // manual step.
    let deployment = manifest.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let hawser = AsDeployed::start(&release, deployment, Launch::Host, Until::Ready).await;
    let active = activated(&client, &config_name, &inert).await;
    assert!(
        active.iter().all(|s| s.to_string().contains(&id)),
        "the chart's selector, from its annotation: {active:?}"
    );

    // The same Deployment, updated, comes back hardened.
    let patch = json!({"metadata": {"annotations": {"touched": "1"}}});
    comes_back_hardened(&deployments, &hawser, |dry_run| {
        let params = PatchParams {
            dry_run,
            ..Default::default()
        };
        let deployments = deployments.clone();
        let patch = patch.clone();
        async move {
            deployments
                .patch("app", &params, &Patch::Merge(&patch))
                .await
        }
    })
    .await;
}

/// In the chart's own mode, where the apiserver calls the webhook Service,
/// hawser waits for that Service to have a ready endpoint (a Ready pod)
/// before it turns its webhooks on: a replica that answers on its own
/// port is not yet one the apiserver can reach. The selector names a
/// label no namespace carries, so the apiserver never calls the webhook
/// here (the test bed cannot route to a Service).
#[tokio::test]
async fn through_the_service_hawser_waits_for_a_ready_endpoint() {
    let client = client().await;
    let home = TestNamespace::create(&client, &unique("install-svc"), &[]).await;
    let (webhook_port, admin_port) = (free_port(), free_port());
    let nobody = unique("nobody");
    let release = Release::install(
        &unique("hawser"),
        &home.name,
        &[
            format!("webhook.port={webhook_port}"),
            format!("admin.port={admin_port}"),
            format!("webhook.namespaceSelector.matchLabels.{E2E_LABEL}={nobody}"),
        ],
    );
    let manifest = release.manifest();
    let named = |kind: &str| {
        manifest.iter().find(|d| d["kind"] == kind).unwrap()["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (config_name, service) = (named("MutatingWebhookConfiguration"), named("Service"));
    let inert = selectors(&client, &config_name).await;
    let deployment = manifest.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let hawser = AsDeployed::start(&release, deployment, Launch::Host, Until::Ready).await;
    let reason = format!("Service {}/{service} has no ready endpoint yet", home.name);
    eventually("hawser to say why it waits", WAIT, || async {
        hawser.log().contains(&reason).then_some(())
    })
    .await;
    assert_eq!(
        selectors(&client, &config_name).await,
        inert,
        "activated without an endpoint"
    );
    assert_eq!(
        hawser.active().await,
        0.0,
        "hawser_webhooks_active while waiting"
    );

    // A ready pod, as the endpoints controller would record it (the test
    // bed runs no pods: the Service loses its selector so the controller
    // leaves these Endpoints alone).
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), &home.name);
    let unselect = json!({"spec": {"selector": null}});
    services
        .patch(&service, &PatchParams::default(), &Patch::Merge(&unselect))
        .await
        .unwrap();
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> =
        Api::namespaced(client.clone(), &home.name);
    let ready = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": service},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "https", "port": webhook_port}]}],
    });
    // Applied again on every look: an endpoints sync already under way
    // when the selector went could still write the empty list over it.
    let active = eventually("hawser to activate its webhooks", WAIT, || async {
        endpoints
            .patch(
                &service,
                &PatchParams::apply("hawser-e2e").force(),
                &Patch::Apply(&ready),
            )
            .await
            .unwrap();
        let now = selectors(&client, &config_name).await;
        now.iter().all(|s| !inert.contains(s)).then_some(now)
    })
    .await;
    eventually("hawser_webhooks_active to say 1", WAIT, || async {
        (hawser.active().await == 1.0).then_some(())
    })
    .await;
    assert!(
        active.iter().all(|s| s.to_string().contains(&nobody)),
        "{active:?}\n{}",
        hawser.log()
    );
}

/// Without `patch` on Services, the vpce controller cannot add its
/// finalizer: it says so (a Warning Event naming the refusal, and its
/// log) and keeps retrying; nothing is made in AWS.
#[tokio::test]
async fn a_permission_the_chart_lacks_is_reported_not_hung_on() {
    use support::vpce::Bed;
    let bed = Bed::start_with_rbac("10m", |docs| {
        let mut removed = 0;
        for doc in docs.iter_mut() {
            for rule in doc["rules"].as_array_mut().into_iter().flatten() {
                if rule["resources"] == json!(["services"]) {
                    let verbs = rule["verbs"].as_array_mut().unwrap();
                    verbs.retain(|v| v != "patch");
                    removed += 1;
                }
            }
        }
        assert_eq!(removed, 1, "the chart grants patch on Services in one rule");
    })
    .await;
    bed.create(
        "s3",
        &[("vpce.hawser.io/service-name", support::vpce::SERVICE_NAME)],
    )
    .await;
    let note = bed.wait_event("s3", "ReconcileError").await;
    let log = bed.hawser().log();
    assert!(
        note.contains("forbidden") || log.contains("forbidden"),
        "Event: {note}\nlog:\n{log}"
    );
    assert!(
        log.contains("cannot patch resource \"services\""),
        "the log names the missing permission:\n{log}"
    );
    assert_eq!(bed.aws_calls("CreateVpcEndpoint", "success").await, 0.0);
}
