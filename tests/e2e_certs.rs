//! Certificate rotation on disk while admission requests keep flowing
//! through the real apiserver: no request may fail.

use crate::support;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    apps::v1::Deployment,
};
use kube::{api::PostParams, Api};
use support::*;

#[tokio::test]
async fn rotating_the_serving_cert_on_disk_fails_no_admission() {
    let client = client().await;
    let hawser = Hawser::start(&[]).await;
    let id = unique("rot");
    let ns = TestNamespace::create(&client, &id, &[]).await;

    // The next certificate comes from another CA; like a CA rotation, the
    // caBundle trusts both CAs before the switch.
    let next = tempfile::tempdir().unwrap();
    write_certs(next.path());
    let ca_old = std::fs::read(hawser.cert_dir.join("ca.crt")).unwrap();
    let ca_new = std::fs::read(next.path().join("ca.crt")).unwrap();
    let mut opts = webhook_options(&hawser, &id);
    opts.ca_bundle = [ca_old.clone(), ca_new.clone()].concat();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &hawser::manifests::mutating(&opts))
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(
            &PostParams::default(),
            &hawser::manifests::validating(&opts),
        )
        .await
        .unwrap();
    let _cleanup = Registration::named(&opts.name);
    wait_for_hooks(&client, &ns.name, Hooks::Both).await;
    assert!(trusted_by(&hawser.webhook_url, &ca_old).await);
    assert!(!trusted_by(&hawser.webhook_url, &ca_new).await);

    // A client creating (dry-run) Deployments through the apiserver.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let load = {
        let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
        let probe = probe_deployment(&ns.name);
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            let dry = PostParams {
                dry_run: true,
                ..Default::default()
            };
            while !stop.load(Ordering::Relaxed) {
                let hardened = api.create(&dry, &probe).await.map(|d| {
                    d.spec
                        .and_then(|s| s.template.spec)
                        .and_then(|s| s.containers[0].security_context.clone())
                });
                match hardened {
                    Ok(Some(sc)) if sc.privileged == Some(false) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("admission failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    eventually(
        "requests before the rotation",
        Duration::from_secs(30),
        || {
            let n = ok.load(Ordering::Relaxed);
            async move { (n >= 20).then_some(()) }
        },
    )
    .await;

    // Rotate as `hawser certs` does: key, then certificate, each renamed
    // into place.
    for f in ["tls.key", "tls.crt"] {
        let tmp = hawser.cert_dir.join(format!("{f}.tmp"));
        std::fs::copy(next.path().join(f), &tmp).unwrap();
        std::fs::rename(&tmp, hawser.cert_dir.join(f)).unwrap();
    }
    let url = hawser.webhook_url.clone();
    eventually(
        "hawser to serve the new certificate",
        Duration::from_secs(30),
        || {
            let (url, ca) = (url.clone(), ca_new.clone());
            async move { trusted_by(&url, &ca).await.then_some(()) }
        },
    )
    .await;
    let after_swap = ok.load(Ordering::Relaxed);
    eventually(
        "requests after the rotation",
        Duration::from_secs(30),
        || {
            let n = ok.load(Ordering::Relaxed);
            async move { (n >= after_swap + 20).then_some(()) }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "admissions failed during the rotation"
    );
    assert!(
        !trusted_by(&hawser.webhook_url, &ca_old).await,
        "the old certificate is still served"
    );
    let reloads = r#"hawser_webhook_cert_reloads_total{result="success"}"#;
    assert_eq!(hawser.metric(reloads).await, 1.0);
    eprintln!(
        "{} admissions succeeded, {} after the swap",
        ok.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed) - after_swap
    );
}
