//! Harness for the end-to-end tests: the real test bed (kube-apiserver
//! v1.20.2 + etcd + moto, started by hack/testenv/up.sh) and real hawser
//! processes. Each test scopes its webhook configurations to namespaces
//! labelled `hawser-e2e=<id>`, so tests run in parallel without seeing each
//! other's objects.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use hawser::manifests::{self, Endpoint, WebhookOptions};
use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    core::v1::Namespace,
};
use kube::{api::PostParams, core::ObjectMeta, Api, Client};

pub mod moto;
pub mod vpce;

pub const E2E_LABEL: &str = "hawser-e2e";

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn testenv_dir() -> PathBuf {
    match std::env::var_os("HAWSER_TESTENV_DIR") {
        Some(d) => PathBuf::from(d),
        None => panic!(
            "the end-to-end tests need the test bed; run `bash hack/test.sh`, \
             or `bash hack/testenv/up.sh && . .testenv/env` and then cargo test"
        ),
    }
}

pub async fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    testenv_dir();
    Client::try_default()
        .await
        .expect("kube client from KUBECONFIG")
}

/// A name unique to this test run: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `hawser run`, killed on drop. Its log is printed if the test
/// fails while it is alive.
pub struct Hawser {
    child: Child,
    pub admin: String,
    pub webhook_url: String,
    pub cert_dir: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The binary under test: cargo's, or `HAWSER_TEST_BIN` when set (a
/// copy, for a target directory that other worktrees build into too).
pub fn hawser_bin() -> String {
    std::env::var("HAWSER_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hawser").to_owned())
}

pub fn write_certs(dir: &Path) {
    let status = Command::new(hawser_bin())
        .args(["certs", "--ip", "127.0.0.1", "--validity", "1d", "--out"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("run hawser certs");
    assert!(status.success(), "hawser certs failed");
}

impl Hawser {
    pub async fn start(extra_args: &[&str]) -> Self {
        testenv_dir();
        let dir = tempfile::tempdir().unwrap();
        let cert_dir = dir.path().join("certs");
        write_certs(&cert_dir);
        let (wport, aport) = (free_port(), free_port());
        let log = dir.path().join("hawser.log");
        let child = Command::new(hawser_bin())
            .arg("run")
            .args(["--webhook-addr", &format!("127.0.0.1:{wport}")])
            .args(["--admin-addr", &format!("127.0.0.1:{aport}")])
            .arg("--tls-cert-dir")
            .arg(&cert_dir)
            .args(["--tls-reload-interval", "1s"])
            .args(extra_args)
            .env("RUST_LOG", "info,hawser=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn hawser");
        let hawser = Self {
            child,
            admin: format!("http://127.0.0.1:{aport}"),
            webhook_url: format!("https://127.0.0.1:{wport}"),
            cert_dir,
            log,
            _dir: dir,
        };
        let readyz = format!("{}/readyz", hawser.admin);
        eventually("hawser /readyz", Duration::from_secs(60), || {
            let readyz = readyz.clone();
            async move {
                let resp = reqwest::get(&readyz).await.ok()?;
                resp.status().is_success().then_some(())
            }
        })
        .await;
        hawser
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one sample, e.g.
    /// `hawser_admission_requests_total{kind="Deployment",...}`, or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics().await, series)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

impl Drop for Hawser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- hawser log ----\n{}", self.log());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    Both,
    ValidateOnly,
}

/// Webhook configurations pointing at one hawser, scoped to namespaces
/// labelled `hawser-e2e=<id>`; deleted on drop.
pub struct Registration {
    name: String,
}

pub fn webhook_options(hawser: &Hawser, id: &str) -> WebhookOptions {
    WebhookOptions {
        name: format!("hawser-e2e-{id}"),
        endpoint: Endpoint::Url(hawser.webhook_url.clone()),
        ca_bundle: std::fs::read(hawser.cert_dir.join("ca.crt")).unwrap(),
        own_namespace: "hawser-system".into(),
        match_namespace_labels: [(E2E_LABEL.to_string(), id.to_string())].into(),
    }
}

impl Registration {
    pub async fn create(client: &Client, hawser: &Hawser, id: &str, hooks: Hooks) -> Self {
        let opts = webhook_options(hawser, id);
        if hooks == Hooks::Both {
            Api::<MutatingWebhookConfiguration>::all(client.clone())
                .create(&PostParams::default(), &manifests::mutating(&opts))
                .await
                .expect("create MutatingWebhookConfiguration");
        }
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &manifests::validating(&opts))
            .await
            .expect("create ValidatingWebhookConfiguration");
        Self { name: opts.name }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        for kind in [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ] {
            let _ = Command::new("kubectl")
                .args([
                    "delete",
                    kind,
                    &self.name,
                    "--ignore-not-found",
                    "--wait=false",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A namespace labelled for one test's webhooks; deleted on drop.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub async fn create(client: &Client, id: &str, annotations: &[(&str, &str)]) -> Self {
        let name = unique(id);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(E2E_LABEL.to_string(), id.to_string())].into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        Self { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .args([
                "delete",
                "namespace",
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the test bed's kubectl (v1.20.2, first on PATH) with `stdin`.
pub fn kubectl(args: &[&str], stdin: &str) -> KubectlOutput {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    KubectlOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn kubectl_apply(manifest: &str) -> KubectlOutput {
    kubectl(&["apply", "-f", "-"], manifest)
}
