//! `--certs=self-managed` against the real apiserver: two replicas racing
//! at start converge on one Secret, patch the caBundle, and rotate the CA
//! and serving certificate at least twice while admission requests keep
//! flowing, with none failing.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    core::v1::Secret,
};
use kube::{api::PostParams, Api};
use support::*;

#[tokio::test]
async fn replicas_converge_and_rotate_twice_without_a_failed_admission() {
    let client = client().await;
    let id = unique("smc");
    let secret = format!("{id}-certs");
    let args = [
        "--certs=self-managed",
        "--namespace=default",
        &format!("--certs-secret={secret}"),
        &format!("--webhook-config-name=hawser-e2e-{id}"),
        "--cert-ip=127.0.0.1",
        // A serving certificate lives 30s; rotation starts 22s before the
        // end, and each step waits 4s (4 reload intervals).
        "--cert-validity=30s",
        "--cert-renew-before=22s",
        "--ca-rotation-grace=4s",
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Both replicas start at once and race to create the Secret.
    let (a, b) = tokio::join!(Hawser::start(&args), Hawser::start(&args));
    let stored = Api::<Secret>::namespaced(client.clone(), "default")
        .get(&secret)
        .await
        .unwrap();
    let ca = stored.data.as_ref().unwrap()["ca.crt"].0.clone();
    assert!(
        trusted_by(&a.webhook_url, &ca).await && trusted_by(&b.webhook_url, &ca).await,
        "the replicas serve different CAs"
    );

    // One webhook entry per replica, so every request needs both; no
    // caBundle: hawser patches it in.
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let mut opts = webhook_options(&a, &id);
    opts.ca_bundle = Vec::new();
    let mut mutating = hawser::manifests::mutating(&opts);
    let mut validating = hawser::manifests::validating(&opts);
    let mut m = mutating.webhooks.as_ref().unwrap()[0].clone();
    m.name = "mutate-b.hawser.io".into();
    m.client_config.url = Some(format!("{}/mutate", b.webhook_url));
    mutating.webhooks.as_mut().unwrap().push(m);
    let mut v = validating.webhooks.as_ref().unwrap()[0].clone();
    v.name = "validate-b.hawser.io".into();
    v.client_config.url = Some(format!("{}/validate", b.webhook_url));
    validating.webhooks.as_mut().unwrap().push(v);
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mutating)
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &validating)
        .await
        .unwrap();
    let _cleanup = Registration::named(&opts.name);
    wait_for_hooks(&client, &ns.name, Hooks::Both).await;

    let load = AdmissionLoad::start(&client, &ns.name);
    let reloads = r#"hawser_webhook_cert_reloads_total{result="success"}"#;
    eventually(
        "two rotations on both replicas",
        Duration::from_secs(90),
        || {
            let (a, b) = (&a, &b);
            async move {
                (a.metric(reloads).await >= 2.0 && b.metric(reloads).await >= 2.0).then_some(())
            }
        },
    )
    .await;
    // Keep the load going through the final drop of the old CA.
    let settled = load.ok.load(std::sync::atomic::Ordering::Relaxed);
    eventually(
        "requests after the second rotation",
        Duration::from_secs(30),
        || {
            let n = load.ok.load(std::sync::atomic::Ordering::Relaxed);
            async move { (n >= settled + 50).then_some(()) }
        },
    )
    .await;
    let (ok, failed) = load.stop().await;
    eprintln!("{ok} admissions succeeded across the rotations, {failed} failed");
    assert_eq!(failed, 0, "admissions failed during rotation");

    // The CA changed and the webhook configurations trust the new one.
    let now = Api::<Secret>::namespaced(client.clone(), "default")
        .get(&secret)
        .await
        .unwrap();
    let new_ca = now.data.as_ref().unwrap()["ca.crt"].0.clone();
    assert_ne!(new_ca, ca, "the CA was never rotated");
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(&opts.name)
        .await
        .unwrap();
    for w in m.webhooks.unwrap() {
        let bundle = w.client_config.ca_bundle.unwrap().0;
        assert!(
            bundle
                .windows(new_ca.len())
                .any(|win| win == new_ca.as_slice()),
            "{} does not trust the new CA",
            w.name
        );
    }
    let _ = Api::<Secret>::namespaced(client.clone(), "default")
        .delete(&secret, &Default::default())
        .await;
}
