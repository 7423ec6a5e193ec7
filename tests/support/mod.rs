//! Harness for the end-to-end tests: the real test bed (kube-apiserver
//! v1.20.2 + etcd + moto, started by hack/testenv/up.sh) and real hawser
//! processes. Each test scopes its webhook configurations to namespaces
//! labelled `hawser-e2e=<id>`, so tests run in parallel without seeing each
//! other's objects.
#![allow(dead_code)]

mod examples;
// Each test binary uses a different part of the harness.
#[allow(unused_imports)]
pub use examples::{Examples, EXAMPLE_FILES};

use std::{
    collections::BTreeMap,
    future::Future,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use hawser::manifests::{self, Endpoint, WebhookOptions};
use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    core::v1::Namespace,
};
use kube::{api::PostParams, core::ObjectMeta, Api, Client};

pub mod artefacts;
pub mod balancer;
pub mod cfn_requests;
pub mod fault_proxy;
pub mod image;
pub mod install;
pub mod lease;
pub mod moto;
pub mod namespace;
mod process;
pub mod rbac;
pub mod stack;
pub mod vpce;

pub use process::Process;

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

/// A port nothing listens on now, and never handed out before in this
/// process: the kernel may give a just-released ephemeral port to the
/// next bind, so two calls in a row (a webhook and an admin port) could
/// otherwise return the same one (it happened in CI).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

/// A running `hawser run`, killed on drop (before its identity is
/// deleted). Its log is printed if the test fails while it is alive.
pub struct Hawser {
    process: Process,
    pub admin: String,
    pub webhook_url: String,
    pub cert_dir: PathBuf,
    /// The chart's ServiceAccount this process runs as.
    pub identity: std::sync::Arc<rbac::Identity>,
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
        Self::start_with_certs(None, extra_args).await
    }

    /// Like [`Hawser::start`], serving the certificate in `certs` (made by
    /// [`write_certs`]) instead of one of its own, so several processes can
    /// sit behind one address, as replicas do behind a Service.
    pub async fn start_with_certs(certs: Option<&Path>, extra_args: &[&str]) -> Self {
        let lease = unique("hawser-e2e-lease");
        let lease = rbac::flag(extra_args, "lease-name").unwrap_or(&lease);
        let identity = rbac::Identity::shared(&rbac::Needs::of(extra_args, lease)).await;
        Self::start_as(identity, lease, certs, extra_args).await
    }

    /// Like [`Hawser::start`], with the chart's RBAC changed by `edit`
    /// before it is applied (to take a permission away, say).
    pub async fn start_with_rbac(
        extra_args: &[&str],
        edit: impl FnOnce(&mut Vec<serde_json::Value>),
    ) -> Self {
        let lease = unique("hawser-e2e-lease");
        let lease = rbac::flag(extra_args, "lease-name").unwrap_or(&lease);
        let identity = rbac::Identity::create(&rbac::Needs::of(extra_args, lease), edit).await;
        Self::start_as(std::sync::Arc::new(identity), lease, None, extra_args).await
    }

    /// Like [`Hawser::start`], as `identity`, with Lease `lease` unless
    /// `extra_args` name one.
    pub async fn start_as(
        identity: std::sync::Arc<rbac::Identity>,
        lease: &str,
        certs: Option<&Path>,
        extra_args: &[&str],
    ) -> Self {
        testenv_dir();
        let dir = tempfile::tempdir().unwrap();
        let cert_dir = match certs {
            Some(shared) => shared.to_owned(),
            None => {
                let own = dir.path().join("certs");
                write_certs(&own);
                own
            }
        };
        let (wport, aport) = (free_port(), free_port());
        let mut cmd = Command::new(hawser_bin());
        cmd.arg("run")
            .args(["--webhook-addr", &format!("127.0.0.1:{wport}")])
            .args(["--admin-addr", &format!("127.0.0.1:{aport}")])
            .arg("--tls-cert-dir")
            .arg(&cert_dir)
            .args(["--tls-reload-interval", "1s"])
            .args(extra_args)
            .env("RUST_LOG", "info,hawser=debug")
            // As the chart runs it: the ServiceAccount's token, and only
            // that identity may write hawser's output annotations.
            .env("KUBECONFIG", &identity.kubeconfig)
            .env("HAWSER_CONTROLLER_USERNAMES", &identity.username)
            // The test bed has no hawser-system; each process leads its own
            // Lease, so parallel tests do not compete (flags override these).
            .env("HAWSER_NAMESPACE", "default")
            .env("HAWSER_LEASE_NAME", lease);
        let process = Process::spawn(cmd, dir.path().join("hawser.log"));
        let mut hawser = Self {
            process,
            admin: format!("http://127.0.0.1:{aport}"),
            webhook_url: format!("https://127.0.0.1:{wport}"),
            cert_dir,
            identity,
            _dir: dir,
        };
        let readyz = format!("{}/readyz", hawser.admin);
        hawser
            .process
            .wait_for(&readyz, Duration::from_secs(60))
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
        self.process.log()
    }

    /// Sends SIGTERM, as the kubelet does when a pod is deleted.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The exit status once the process has exited, else `None`.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    /// `host:port` of the webhook listener.
    pub fn webhook_addr(&self) -> &str {
        self.webhook_url.trim_start_matches("https://")
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

/// The sum of `hawser_aws_api_calls_total` over every operation of
/// `service` (ec2, cloudformation, sts) with `outcome`.
pub fn aws_calls_sum(text: &str, service: &str, outcome: &str) -> f64 {
    let (service, outcome) = (
        format!("service=\"{service}\""),
        format!("outcome=\"{outcome}\""),
    );
    text.lines()
        .filter(|l| l.starts_with("hawser_aws_api_calls_total{"))
        .filter(|l| l.contains(&service) && l.contains(&outcome))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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
        aws_auth_guard: false,
    }
}

impl Registration {
    pub async fn create(client: &Client, hawser: &Hawser, id: &str, hooks: Hooks) -> Self {
        Self::create_with(client, &webhook_options(hawser, id), hooks).await
    }

    /// Registers configurations made from `opts` (see [`webhook_options`]).
    pub async fn create_with(client: &Client, opts: &WebhookOptions, hooks: Hooks) -> Self {
        if hooks == Hooks::Both {
            Api::<MutatingWebhookConfiguration>::all(client.clone())
                .create(&PostParams::default(), &manifests::mutating(opts))
                .await
                .expect("create MutatingWebhookConfiguration");
        }
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &manifests::validating(opts))
            .await
            .expect("create ValidatingWebhookConfiguration");
        Self {
            name: opts.name.clone(),
        }
    }

    /// Deletes configurations named `name` on drop, for tests that create
    /// their own.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
        }
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

/// A privileged Deployment, the probe for whether webhooks are active.
pub fn probe_deployment(namespace: &str) -> k8s_openapi::api::apps::v1::Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "probe"}},
            "template": {
                "metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "app", "image": "x", "securityContext": {"privileged": true}}]}
            }
        }
    }))
    .unwrap()
}

/// Waits until the apiserver calls this test's webhooks: a dry-run create
/// of a privileged Deployment in `probe_ns` comes back hardened (mutating
/// hook) or refused (validating hook only).
pub async fn wait_for_hooks(client: &Client, probe_ns: &str, hooks: Hooks) {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: Api<Deployment> = Api::namespaced(client.clone(), probe_ns);
    let probe = probe_deployment(probe_ns);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    eventually(
        "the webhook configurations to take effect",
        Duration::from_secs(30),
        || {
            let (api, probe, dry) = (api.clone(), probe.clone(), dry.clone());
            async move {
                match (api.create(&dry, &probe).await, hooks) {
                    (Ok(d), Hooks::Both) => {
                        let c = &d.spec?.template.spec?.containers[0];
                        (c.security_context.as_ref()?.privileged == Some(false)).then_some(())
                    }
                    (Err(kube::Error::Api(e)), Hooks::ValidateOnly) => {
                        e.message.contains("does not allow").then_some(())
                    }
                    _ => None,
                }
            }
        },
    )
    .await;
}

/// Starts hawser, a probe namespace and webhooks scoped to `id`, and waits
/// until the apiserver calls them.
pub async fn hawser_with_hooks(
    client: &Client,
    id: &str,
    extra_args: &[&str],
) -> (Hawser, TestNamespace, Registration) {
    let hawser = Hawser::start(extra_args).await;
    let probe = TestNamespace::create(client, id, &[]).await;
    let hooks = Registration::create(client, &hawser, id, Hooks::Both).await;
    wait_for_hooks(client, &probe.name, Hooks::Both).await;
    (hawser, probe, hooks)
}

/// Can a client that trusts only `ca_pem` complete a TLS handshake with
/// the webhook at `url`? (Any HTTP status will do; the handshake is the
/// question.)
pub async fn trusted_by(url: &str, ca_pem: &[u8]) -> bool {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .build()
        .unwrap();
    client.get(format!("{url}/mutate")).send().await.is_ok()
}

/// Keeps creating (server-side dry run) a privileged Deployment in `ns`
/// until stopped, counting hardened answers and failures.
pub struct AdmissionLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub ok: std::sync::Arc<AtomicU32>,
    pub failed: std::sync::Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl AdmissionLoad {
    pub fn start(client: &Client, ns: &str) -> Self {
        use k8s_openapi::api::apps::v1::Deployment;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ok = std::sync::Arc::new(AtomicU32::new(0));
        let failed = std::sync::Arc::new(AtomicU32::new(0));
        let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let probe = probe_deployment(ns);
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let dry = PostParams {
                dry_run: true,
                ..Default::default()
            };
            while !s.load(Ordering::Relaxed) {
                let hardened = api.create(&dry, &probe).await.map(|d| {
                    d.spec
                        .and_then(|s| s.template.spec)
                        .and_then(|s| s.containers[0].security_context.clone())
                        .and_then(|sc| sc.privileged)
                });
                match hardened {
                    Ok(Some(false)) => o.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("admission failed: {other:?}");
                        f.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        });
        Self {
            stop,
            ok,
            failed,
            task,
        }
    }

    pub async fn stop(self) -> (u32, u32) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
