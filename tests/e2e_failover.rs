//! Several replicas, as a Deployment runs them: admission through the
//! apiserver keeps working while leadership moves, and SIGTERM drains
//! in-flight admission requests before the Lease is released.

use crate::support;

use std::{sync::Arc, time::Duration};

use rustls::pki_types::ServerName;
use support::{balancer::Balancer, lease, *};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const LEADER: &str = "hawser_leader";

fn controller_args(ns: &str, lease: &str, duration: &str) -> Vec<String> {
    vec![
        "--controllers=vpce".into(),
        "--cluster-name=failover-test".into(),
        format!("--watch-namespace={ns}"),
        format!("--lease-name={lease}"),
        format!("--lease-duration={duration}"),
    ]
}

/// Two replicas behind one address (the stand-in for the webhook
/// Service), admission requests flowing through the apiserver the whole
/// time; SIGKILL of the leader.
#[tokio::test]
async fn admission_keeps_working_while_leadership_moves() {
    let client = client().await;
    let id = unique("failover");
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let lease_name = unique("hawser-e2e-failover-lease");
    let certs = tempfile::tempdir().unwrap();
    write_certs(certs.path());
    let args = controller_args(&ns.name, &lease_name, "6s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = tokio::join!(
        Hawser::start_with_certs(Some(certs.path()), &args),
        Hawser::start_with_certs(Some(certs.path()), &args)
    );
    let a_leads = lease::one_leads(&a, &b).await;
    let (leader, follower) = if a_leads { (a, b) } else { (b, a) };
    // The leader first: the balancer's first connection goes to it, and the
    // apiserver keeps that connection (HTTP/2) for every request, so all of
    // the load is on the process that gets killed: the hardest case.
    let lb = Balancer::start(&[
        (leader.webhook_addr(), &leader.admin),
        (follower.webhook_addr(), &follower.admin),
    ])
    .await;
    let mut opts = webhook_options(&leader, &id);
    opts.endpoint = hawser::manifests::Endpoint::Url(lb.url.clone());
    let _registration = Registration::create_with(&client, &opts, Hooks::Both).await;
    wait_for_hooks(&client, &ns.name, Hooks::Both).await;

    let load = AdmissionLoad::start(&client, &ns.name);
    let served = |n: u32| {
        let ok = load.ok.clone();
        move || {
            let ok = ok.clone();
            async move { (ok.load(std::sync::atomic::Ordering::Relaxed) >= n).then_some(()) }
        }
    };
    eventually(
        "admissions before the kill",
        Duration::from_secs(30),
        served(20),
    )
    .await;
    let leader_served = leader.metric(ADMITTED).await;
    assert!(
        leader_served > 0.0,
        "the balancer never sent a request to the leader, so the kill proves nothing"
    );

    drop(leader); // SIGKILL: nothing drained, the Lease is not released
    let killed_at_ok = load.ok.load(std::sync::atomic::Ordering::Relaxed);
    let killed = std::time::Instant::now();
    let left = lease::get(&client, &lease_name).await.unwrap();
    eventually("the follower to lead", Duration::from_secs(30), || {
        let f = &follower;
        async move { (f.metric(LEADER).await == 1.0).then_some(()) }
    })
    .await;
    let took = killed.elapsed();
    let during = load.ok.load(std::sync::atomic::Ordering::Relaxed) - killed_at_ok;
    eventually(
        "admissions after the takeover",
        Duration::from_secs(30),
        served(killed_at_ok + during + 20),
    )
    .await;
    let (ok, failed) = load.stop().await;
    eprintln!(
        "leadership moved {took:?} after SIGKILL; {during} admissions succeeded meanwhile; \
         {ok} succeeded and {failed} failed in all"
    );
    lease::assert_takeover_after_expiry(&left, &lease::get(&client, &lease_name).await.unwrap(), 6);
    assert!(
        during >= 5,
        "admission stalled while leadership was moving: {during} admissions in {took:?}"
    );
    // A request in flight on a connection to the killed process can fail:
    // it lost its TCP peer, as in any abrupt pod loss. Nothing else may.
    assert!(
        failed <= 1,
        "{failed} admissions failed; at most the one in flight at the kill may"
    );
}

const ADMITTED: &str = r#"hawser_admission_requests_total{kind="Deployment",operation="CREATE",result="patched",webhook="mutate"}"#;

/// The AdmissionReview body of a privileged Deployment in `default`.
fn review_body() -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/deployment-create-privileged.json"
    ))
    .unwrap();
    let mut review: serde_json::Value = serde_json::from_str(&text).unwrap();
    review["request"]["namespace"] = "default".into();
    review["request"]["object"]["metadata"]["namespace"] = "default".into();
    serde_json::to_vec(&review).unwrap()
}

async fn tls_connect(hawser: &Hawser) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(hawser.cert_dir.join("ca.crt")).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(hawser.webhook_addr()).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// SIGTERM while an admission request is half sent: the listener closes at
/// once, the request still gets its answer, and only after that is the
/// Lease released and the process gone.
#[tokio::test]
async fn sigterm_answers_in_flight_admission_then_releases_the_lease() {
    let client = client().await;
    let ns = TestNamespace::create(&client, &unique("sigterm"), &[]).await;
    let lease_name = unique("hawser-e2e-sigterm-lease");
    // A long Lease: a handover within the test's deadline can only be the
    // release, never an expiry.
    let args = controller_args(&ns.name, &lease_name, "60s");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--shutdown-grace=30s");
    let mut hawser = Hawser::start(&args).await;
    eventually("hawser to lead", Duration::from_secs(30), || {
        let h = &hawser;
        async move { (h.metric(LEADER).await == 1.0).then_some(()) }
    })
    .await;
    let identity = lease::holder(&client, &lease_name)
        .await
        .expect("the lease has a holder");

    // Headers and the first half of the body; the rest comes after SIGTERM.
    let body = review_body();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut conn = tls_connect(&hawser).await;
    let head = format!(
        "POST /mutate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nExpect: 100-continue\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    // The server answers "100 Continue" once the handler reads the body:
    // from then on the request is in flight, not bytes in a socket buffer
    // that a SIGTERM sent earlier would find unread.
    let until_blank_line = async {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            assert_eq!(conn.read(&mut byte).await.unwrap(), 1, "connection closed");
            got.push(byte[0]);
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    let interim = tokio::time::timeout(Duration::from_secs(10), until_blank_line)
        .await
        .expect("no 100 Continue within 10s");
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    conn.write_all(first).await.unwrap();
    conn.flush().await.unwrap();

    hawser.terminate();
    let addr = hawser.webhook_addr().to_owned();
    eventually(
        "the listener to refuse new connections",
        Duration::from_secs(10),
        || {
            let addr = addr.clone();
            async move { TcpStream::connect(&addr).await.is_err().then_some(()) }
        },
    )
    .await;
    assert!(
        hawser.exited().is_none(),
        "hawser exited with a request in flight"
    );
    assert_eq!(
        lease::holder(&client, &lease_name).await.as_deref(),
        Some(identity.as_str()),
        "the Lease was released while an admission request was in flight"
    );
    assert_eq!(
        hawser.metric(LEADER).await,
        1.0,
        "controllers stopped early"
    );

    conn.write_all(rest).await.unwrap();
    conn.flush().await.unwrap();
    // Read until the JSON answer is complete (the connection stays open:
    // keep-alive), bounded by a deadline.
    let read = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if n == 0 || text.trim_end().ends_with('}') {
                return text;
            }
        }
    };
    let response = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no answer to the in-flight request within 10s");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "in-flight request not answered: {response}"
    );
    assert!(
        response.contains("\"allowed\":true") && response.contains("\"patch\""),
        "not a mutation answer: {response}"
    );
    drop(conn);

    eventually("the Lease to be released", Duration::from_secs(20), || {
        let (client, name) = (&client, &lease_name);
        async move { lease::holder(client, name).await.is_none().then_some(()) }
    })
    .await;
    let status = eventually("hawser to exit", Duration::from_secs(20), || {
        let status = hawser.exited();
        async move { status }
    })
    .await;
    assert!(status.success(), "hawser exited with {status}");
    let log = hawser.log();
    let drained = log.find("admission server stopped").expect("drain logged");
    let released = log.find("lease released").expect("release logged");
    assert!(
        drained < released,
        "released the Lease before draining:\n{log}"
    );
}
