//! Deployment hardening against the real apiserver: mutation with a
//! warning kubectl shows, the validating backstop, the namespace allowance,
//! the restricted profile, idempotence and the admission metrics.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{api::PostParams, Api, Client};
use support::*;

fn deployment_yaml(namespace: &str, name: &str, annotations: &str, privileged: bool) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {namespace}
  annotations: {{{annotations}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      initContainers:
      - name: setup
        image: busybox
      containers:
      - name: app
        image: nginx
        securityContext:
          privileged: {privileged}
"#
    )
}

fn privileged(d: &Deployment, container: &str) -> Option<bool> {
    let spec = d.spec.as_ref()?.template.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == container)?
        .security_context
        .as_ref()?
        .privileged
}

async fn get_deployment(client: &Client, ns: &str, name: &str) -> Deployment {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

#[tokio::test]
async fn privileged_is_neutralised_and_kubectl_shows_the_warning() {
    let client = client().await;
    let hawser = Hawser::start(&[]).await;
    let id = unique("mut");
    let probe = TestNamespace::create(&client, &id, &[]).await;
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let _hooks = Registration::create(&client, &hawser, &id, Hooks::Both).await;
    wait_for_hooks(&client, &probe.name, Hooks::Both).await;

    let out = kubectl_apply(&deployment_yaml(&ns.name, "web", "", true));
    assert!(out.success, "kubectl apply failed: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            r#"Warning: hawser set securityContext.privileged=false on container "app"; to allow it, annotate namespace "{}" with security.hawser.io/allow-privileged=true"#,
            ns.name
        )),
        "kubectl did not show the warning; stderr: {}",
        out.stderr
    );
    let stored = get_deployment(&client, &ns.name, "web").await;
    assert_eq!(privileged(&stored, "app"), Some(false));
    assert_eq!(
        privileged(&stored, "setup"),
        Some(false),
        "init containers are hardened too"
    );

    // Applying the same manifest again stores nothing new: kubectl still
    // sends privileged=true (its last-applied state differs from the live
    // object), and the mutation turns the update into a no-op.
    let again = kubectl_apply(&deployment_yaml(&ns.name, "web", "", true));
    assert!(again.success, "{}", again.stderr);
    let after = get_deployment(&client, &ns.name, "web").await;
    // (resourceVersion is no witness: the Deployment controller writes status.)
    assert_eq!(after.metadata.generation, stored.metadata.generation);
    assert_eq!(after.spec, stored.spec);

    // A manifest that leaves securityContext unset is "unchanged" on re-apply.
    let plain = deployment_yaml(&ns.name, "plain", "", true)
        .replace("        securityContext:\n          privileged: true\n", "");
    assert!(!plain.contains("securityContext"));
    let first = kubectl_apply(&plain);
    assert!(first.success, "{}", first.stderr);
    assert_eq!(
        privileged(&get_deployment(&client, &ns.name, "plain").await, "app"),
        Some(false)
    );
    let second = kubectl_apply(&plain);
    assert!(
        second.stdout.contains("deployment.apps/plain unchanged"),
        "second apply: {}",
        second.stdout
    );

    // The probe and our apply were counted.
    let patched = r#"hawser_admission_requests_total{kind="Deployment",operation="CREATE",result="patched",webhook="mutate"}"#;
    let allowed = r#"hawser_admission_requests_total{kind="Deployment",operation="CREATE",result="allowed",webhook="validate"}"#;
    assert!(
        hawser.metric(patched).await >= 2.0,
        "{}",
        hawser.metrics().await
    );
    assert!(
        hawser.metric(allowed).await >= 2.0,
        "{}",
        hawser.metrics().await
    );
    assert!(hawser
        .metrics()
        .await
        .contains("hawser_admission_duration_seconds_bucket{webhook=\"mutate\""));
}

#[tokio::test]
async fn validating_webhook_alone_refuses_privileged_with_an_actionable_message() {
    let client = client().await;
    let hawser = Hawser::start(&[]).await;
    let id = unique("val");
    let probe = TestNamespace::create(&client, &id, &[]).await;
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let _hooks = Registration::create(&client, &hawser, &id, Hooks::ValidateOnly).await;
    wait_for_hooks(&client, &probe.name, Hooks::ValidateOnly).await;

    let out = kubectl_apply(&deployment_yaml(&ns.name, "web", "", true));
    assert!(
        !out.success,
        "a privileged Deployment was admitted: {}",
        out.stdout
    );
    let expected = format!(
        r#"admission webhook "validate.hawser.io" denied the request: container "app" of Deployment {ns}/web sets securityContext.privileged=true, which namespace "{ns}" does not allow; remove it, or annotate the namespace with security.hawser.io/allow-privileged="true" (or run hawser with --allow-privileged-containers)"#,
        ns = ns.name
    );
    assert!(out.stderr.contains(&expected), "stderr: {}", out.stderr);
    assert!(get_deployment_opt(&client, &ns.name, "web").await.is_none());

    let denied = r#"hawser_admission_requests_total{kind="Deployment",operation="CREATE",result="denied",webhook="validate"}"#;
    assert!(
        hawser.metric(denied).await >= 2.0,
        "{}",
        hawser.metrics().await
    );

    // Unprivileged passes the same webhook.
    let ok = kubectl_apply(&deployment_yaml(&ns.name, "web", "", false));
    assert!(ok.success, "{}", ok.stderr);
}

async fn get_deployment_opt(client: &Client, ns: &str, name: &str) -> Option<Deployment> {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

#[tokio::test]
async fn namespace_allowance_lets_privileged_through() {
    let client = client().await;
    let hawser = Hawser::start(&[]).await;
    let id = unique("allow");
    let probe = TestNamespace::create(&client, &id, &[]).await;
    let ns = TestNamespace::create(
        &client,
        &id,
        &[("security.hawser.io/allow-privileged", "true")],
    )
    .await;
    let _hooks = Registration::create(&client, &hawser, &id, Hooks::Both).await;
    wait_for_hooks(&client, &probe.name, Hooks::Both).await;

    let out = kubectl_apply(&deployment_yaml(&ns.name, "agent", "", true));
    assert!(out.success, "{}", out.stderr);
    assert!(
        !out.stderr.contains("Warning"),
        "unexpected warning: {}",
        out.stderr
    );
    let stored = get_deployment(&client, &ns.name, "agent").await;
    assert_eq!(privileged(&stored, "app"), Some(true));
}

#[tokio::test]
async fn allow_privileged_containers_flag_lets_privileged_through_everywhere() {
    let client = client().await;
    let hawser = Hawser::start(&["--allow-privileged-containers"]).await;
    let id = unique("flag");
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let _hooks = Registration::create(&client, &hawser, &id, Hooks::Both).await;
    // The flag leaves privileged alone, so probe with the restricted profile.
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let restricted: Deployment = serde_yaml_ng::from_str(&deployment_yaml(
        &ns.name,
        "probe",
        r#""security.hawser.io/profile": restricted"#,
        true,
    ))
    .unwrap();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    eventually(
        "the webhook configurations to take effect",
        Duration::from_secs(30),
        || {
            let (api, d, dry) = (api.clone(), restricted.clone(), dry.clone());
            async move {
                let stored = api.create(&dry, &d).await.ok()?;
                let sc = stored.spec?.template.spec?.containers[0]
                    .security_context
                    .clone()?;
                (sc.run_as_non_root == Some(true)).then_some(())
            }
        },
    )
    .await;

    let out = kubectl_apply(&deployment_yaml(&ns.name, "agent", "", true));
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        privileged(&get_deployment(&client, &ns.name, "agent").await, "app"),
        Some(true)
    );
}

#[tokio::test]
async fn restricted_profile_fills_unset_fields() {
    let client = client().await;
    let hawser = Hawser::start(&[]).await;
    let id = unique("rest");
    let probe = TestNamespace::create(&client, &id, &[]).await;
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let _hooks = Registration::create(&client, &hawser, &id, Hooks::Both).await;
    wait_for_hooks(&client, &probe.name, Hooks::Both).await;

    let out = kubectl_apply(&deployment_yaml(
        &ns.name,
        "api",
        r#""security.hawser.io/profile": restricted"#,
        false,
    ));
    assert!(out.success, "{}", out.stderr);
    let stored = get_deployment(&client, &ns.name, "api").await;
    let spec = stored.spec.unwrap().template.spec.unwrap();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let sc = c
            .security_context
            .clone()
            .unwrap_or_else(|| panic!("{} has no securityContext", c.name));
        assert_eq!(sc.privileged, Some(false), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.run_as_non_root, Some(true), "{}", c.name);
        assert_eq!(
            sc.capabilities.unwrap().drop,
            Some(vec!["ALL".to_string()]),
            "{}",
            c.name
        );
        assert_eq!(
            sc.seccomp_profile.unwrap().type_,
            "RuntimeDefault",
            "{}",
            c.name
        );
    }
}

// --- Hostile clients against the real server (RELIABILITY.md): an
// oversized body, a slowloris, a stalled handshake, a silent client.

use std::sync::Arc;

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// Machines running these tests are noisy: a cut is awaited for its bound
/// plus this much.
const SLACK: Duration = Duration::from_secs(10);

async fn tls_connect(hawser: &Hawser) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(hawser.cert_dir.join("ca.crt")).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // HTTP/1.1, as the raw requests below are written.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(hawser.webhook_addr()).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

/// Reads until the server closes the connection (end of stream or an
/// error), at most until `deadline`; what it sent, or `None` if it was
/// still open then.
async fn read_until_closed<S: AsyncRead + Unpin>(s: &mut S, deadline: Instant) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_before_it_is_sent() {
    let hawser = Hawser::start(&[]).await;
    let mut tls = tls_connect(&hawser).await;
    let started = Instant::now();
    // Declares 64 MiB, sends 1 KiB: only the declared length can refuse it.
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        64 * 1024 * 1024
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&[b' '; 1024]).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_until_closed(&mut tls, started + SLACK)
        .await
        .expect("the server neither answered nor closed within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer.ends_with(
            "hawser: the request body is 67108864 bytes; at most 8388608 bytes are accepted"
        ),
        "{answer}"
    );
    eprintln!("413 after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn slowloris_stalled_handshakes_and_silent_clients_are_cut() {
    use hawser::webhook::{REQUEST_READ_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};
    let hawser = Hawser::start(&[]).await;

    // Headers one byte every 200 ms, forever.
    let slowloris = async {
        let mut tls = tls_connect(&hawser).await;
        let started = Instant::now();
        tls.write_all(b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        let deadline = started + REQUEST_READ_TIMEOUT + SLACK;
        loop {
            let tick = (Instant::now() + Duration::from_millis(200)).min(deadline);
            if read_until_closed(&mut tls, tick).await.is_some() {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "a slowloris connection still open after {:?}",
                started.elapsed()
            );
            if tls.write_all(b"x").await.is_err() || tls.flush().await.is_err() {
                return started.elapsed();
            }
        }
    };
    // A TLS record header, then nothing: the handshake never completes.
    let stalled_handshake = async {
        let mut tcp = TcpStream::connect(hawser.webhook_addr()).await.unwrap();
        let started = Instant::now();
        tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        read_until_closed(&mut tcp, started + TLS_HANDSHAKE_TIMEOUT + SLACK)
            .await
            .expect("a stalled handshake still open");
        started.elapsed()
    };
    // A completed handshake, then not a byte.
    let silent = async {
        let mut tls = tls_connect(&hawser).await;
        let started = Instant::now();
        read_until_closed(&mut tls, started + REQUEST_READ_TIMEOUT + SLACK)
            .await
            .expect("a silent connection still open");
        started.elapsed()
    };
    let (slowloris, handshake, silent) = tokio::join!(slowloris, stalled_handshake, silent);
    eprintln!("cut after: slowloris {slowloris:?}, handshake {handshake:?}, silent {silent:?}");
    // Cut by the stated bounds, not by something earlier.
    let early = Duration::from_secs(2);
    for (what, took, bound) in [
        ("slowloris", slowloris, REQUEST_READ_TIMEOUT),
        ("handshake", handshake, TLS_HANDSHAKE_TIMEOUT),
        ("silent", silent, REQUEST_READ_TIMEOUT),
    ] {
        assert!(took >= bound - early, "{what} cut after only {took:?}");
    }

    // The server still answers a well-behaved client.
    let mut tls = tls_connect(&hawser).await;
    let body = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#;
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let answer = read_until_closed(&mut tls, Instant::now() + SLACK)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}
