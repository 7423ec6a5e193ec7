//! Installed as users install it, against the real apiserver:
//! - `helm install` with the chart's defaults blocks no write while hawser
//!   is not running; hawser started exactly as the rendered Deployment
//!   says (args, env, ports, probes) activates its webhooks by itself, and
//!   the same Deployment then comes back hardened;
//! - a permission the chart lacks is reported (Event and log), not a hang.

mod support;

use std::{collections::BTreeMap, process::Command, time::Duration};

use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    apps::v1::Deployment,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api,
};
use serde_json::{json, Value};
use support::artefacts::CHART;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// A Helm release, uninstalled on drop.
struct Release {
    name: String,
    namespace: String,
}

impl Release {
    fn install(name: &str, namespace: &str, set: &[String]) -> Self {
        let mut cmd = Command::new(rbac::helm());
        cmd.args(["install", name, CHART, "--namespace", namespace]);
        for s in set {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "helm install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// What Helm applied, one value per object.
    fn manifest(&self) -> Vec<Value> {
        let out = Command::new(rbac::helm())
            .args([
                "get",
                "manifest",
                &self.name,
                "--namespace",
                &self.namespace,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_yaml_ng::Deserializer::from_str(&String::from_utf8(out.stdout).unwrap())
            .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect()
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = Command::new(rbac::helm())
            .args(["uninstall", &self.name, "--namespace", &self.namespace])
            .output();
    }
}

/// The hawser container of the rendered Deployment, started here as the
/// kubelet would start it: the same args and env (field references
/// resolved), the ServiceAccount's token, nothing else. Killed on drop.
struct AsDeployed {
    process: Process,
    admin_port: u16,
    _dir: tempfile::TempDir,
}

/// Where the Deployment's container comes from.
enum Launch<'a> {
    /// The binary cargo built, on the host.
    Host,
    /// The image hack/image.sh built, run by buildah; `extra_ca` is
    /// mounted into its /etc/ssl/certs beside the image's own bundle.
    Image {
        container: &'a image::Container,
        extra_ca: &'a std::path::Path,
    },
}

impl AsDeployed {
    async fn start(release: &Release, deployment: &Value, launch: Launch<'_>) -> Self {
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let mut env = BTreeMap::new();
        for e in container["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => "hawser-0".to_string(),
                Some("metadata.namespace") => release.namespace.clone(),
                Some(other) => panic!("{name}: field reference {other} not handled"),
                None => e["value"].as_str().unwrap().to_string(),
            };
            env.insert(name, value);
        }
        assert!(
            container["volumeMounts"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "the default install mounts nothing; this test would have to mount it"
        );
        let port = |name: &str| -> u16 {
            container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("no port {name}")) as u16
        };
        let probe_port = |probe: &str| {
            container[probe]["httpGet"]["port"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(probe_port("readinessProbe"), "admin");
        assert_eq!(probe_port("livenessProbe"), "admin");

        let sa = pod["serviceAccountName"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        // What the pod's projected token and the in-cluster config give it.
        let config = rbac::kubeconfig_of(&release.namespace, sa).await;
        let cmd = match launch {
            Launch::Host => {
                std::fs::write(&kubeconfig, config).unwrap();
                let mut cmd = Command::new(hawser_bin());
                cmd.args(&args)
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("KUBECONFIG", &kubeconfig)
                    .envs(&env);
                cmd
            }
            Launch::Image {
                container,
                extra_ca,
            } => {
                // The image runs as 65532: the directory must be readable
                // by it, and the kubeconfig carries its CA inline.
                use std::os::unix::fs::PermissionsExt;
                std::fs::write(&kubeconfig, inline_ca(&config)).unwrap();
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                    .unwrap();
                std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644))
                    .unwrap();
                let config = container.config();
                // A pod's `args` follow the image's entrypoint.
                let mut argv: Vec<&str> = config["Entrypoint"]
                    .as_array()
                    .expect("the image has an entrypoint")
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                argv.extend(&args);
                let mut env: Vec<(String, String)> = env.into_iter().collect();
                env.push(("KUBECONFIG".into(), "/certs/kubeconfig".into()));
                container.run(
                    &[
                        (dir.path(), "/certs"),
                        (extra_ca, "/etc/ssl/certs/hawser-test-ca.pem"),
                    ],
                    &env,
                    &argv,
                )
            }
        };
        let mut this = Self {
            process: Process::spawn(cmd, dir.path().join("hawser.log")),
            admin_port: port("admin"),
            _dir: dir,
        };
        for probe in ["livenessProbe", "readinessProbe"] {
            let path = container[probe]["httpGet"]["path"].as_str().unwrap();
            let url = format!("http://127.0.0.1:{}{path}", this.admin_port);
            this.process.wait_for(&url, WAIT).await;
        }
        this
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// The process serving the admin port (inside the container, if any).
    fn pid(&self) -> u32 {
        image::listener_pid(self.admin_port).expect("a process listening on the admin port")
    }

    /// `hawser_webhooks_active`.
    async fn active(&self) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin_port);
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        metric_value(&text, "hawser_webhooks_active")
    }
}

/// The chart's defaults, but for what this machine needs: the apiserver
/// reaches hawser on loopback (no pod network here), on ports of the
/// test's own, and only for the test's namespace `id` (tests share the
/// apiserver).
fn on_loopback(id: &str) -> Vec<String> {
    let (webhook_port, admin_port) = (free_port(), free_port());
    vec![
        format!("webhook.url=https://127.0.0.1:{webhook_port}"),
        "certs.ipAddresses={127.0.0.1}".into(),
        format!("webhook.port={webhook_port}"),
        format!("admin.port={admin_port}"),
        format!("webhook.namespaceSelector.matchLabels.{E2E_LABEL}={id}"),
    ]
}

fn webhook_config_name(manifest: &[Value]) -> String {
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
async fn comes_back_hardened<F, Fut>(deployments: &Api<Deployment>, hawser: &AsDeployed, write: F)
where
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

/// `kubeconfig` (JSON) with its cluster's CA file replaced by the file's
/// contents, for a process that cannot see the host's files.
fn inline_ca(kubeconfig: &str) -> String {
    use base64::Engine;
    let mut config: Value = serde_json::from_str(kubeconfig).unwrap();
    let cluster = &mut config["clusters"][0]["cluster"];
    let path = cluster["certificate-authority"]
        .as_str()
        .unwrap()
        .to_owned();
    let pem = std::fs::read(path).unwrap();
    let map = cluster.as_object_mut().unwrap();
    map.remove("certificate-authority");
    map.insert(
        "certificate-authority-data".into(),
        base64::engine::general_purpose::STANDARD.encode(pem).into(),
    );
    config.to_string()
}

fn app(namespace: &str) -> Deployment {
    let mut d = probe_deployment(namespace);
    d.metadata.name = Some("app".into());
    d
}

fn privileged(d: &Deployment) -> Option<bool> {
    d.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .security_context
        .as_ref()?
        .privileged
}

/// The namespaceSelector of every hawser entry (not the aws-auth guard's).
async fn selectors(client: &kube::Client, name: &str) -> Vec<Value> {
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
async fn activated(client: &kube::Client, config_name: &str, inert: &[Value]) -> Vec<Value> {
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
    let hawser = AsDeployed::start(&release, deployment, Launch::Host).await;
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
    let hawser = AsDeployed::start(&release, deployment, Launch::Host).await;
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

/// The image hack/image.sh built, run as the chart's Deployment runs it
/// (its args and env; the image's entrypoint and user; the token in a
/// mounted directory) with controllers on, so that it must reach both the
/// apiserver and an AWS endpoint over TLS: it becomes ready (the AWS
/// identity check passed; the endpoint's test CA is mounted beside the
/// image's bundle, which loads without error as user 65532), activates
/// its webhooks, and a privileged Deployment created through the
/// apiserver comes back hardened. This is the binary in the image, with
/// the libraries in the image, not the host's; the bundle's contents are
/// checked by `the_image_holds_what_the_docs_say`.
#[tokio::test]
async fn the_image_runs_as_deployed_reaches_aws_over_tls_and_hardens() {
    let client = client().await;
    let id = unique("image");
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let home = TestNamespace::create(&client, &unique("image-home"), &[]).await;
    let aws = support::moto::TlsMoto::start().await;
    let mut values = on_loopback(&id);
    values.extend([
        "controllers={vpce}".into(),
        format!("clusterName={id}"),
        format!("watchNamespace={}", ns.name),
        format!("aws.endpointUrl={}", aws.url),
        format!("aws.region={}", support::moto::REGION),
        "extraEnv[0].name=AWS_ACCESS_KEY_ID".into(),
        "extraEnv[0].value=testing".into(),
        "extraEnv[1].name=AWS_SECRET_ACCESS_KEY".into(),
        "extraEnv[1].value=testing".into(),
    ]);
    let release = Release::install(&unique("hawser"), &home.name, &values);
    let manifest = release.manifest();
    let config_name = webhook_config_name(&manifest);
    let inert = selectors(&client, &config_name).await;
    let deployment = manifest.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = image::Container::from_archive(&image::archive());
    let launch = Launch::Image {
        container: &container,
        extra_ca: &aws.ca,
    };
    // Ready means the AWS identity check answered, over TLS.
    let hawser = AsDeployed::start(&release, deployment, launch).await;
    let log = hawser.log();
    assert!(log.contains("AWS identity confirmed"), "{log}");
    assert!(
        !log.contains("native root CA") && !log.contains("no native root"),
        "the image's CA bundle did not load:\n{log}"
    );
    assert_eq!(
        image::uid_of(hawser.pid()),
        65532,
        "the image's user serves the admin port"
    );

    activated(&client, &config_name, &inert).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    comes_back_hardened(&deployments, &hawser, |dry_run| {
        let params = PostParams {
            dry_run,
            ..Default::default()
        };
        let deployments = deployments.clone();
        let app = app(&ns.name);
        async move { deployments.create(&params, &app).await }
    })
    .await;
}

/// The image is what docs/install.md and the chart say: user 65532,
/// entrypoint hawser with cmd run, ports 8443 and 8080, the OCI labels,
/// and only the files hack/image/rootfs.sh lists; `--version` runs in it.
#[tokio::test]
async fn the_image_holds_what_the_docs_say() {
    let mut container = image::Container::from_archive(&image::archive());
    let config = container.config();
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/hawser"]));
    assert_eq!(config["Cmd"], json!(["run"]));
    assert_eq!(
        config["ExposedPorts"],
        json!({"8080/tcp": {}, "8443/tcp": {}}),
        "{config}"
    );
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        env!("CARGO_PKG_REPOSITORY")
    );
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap_or_default();
    assert!(
        revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()),
        "a commit id: {labels}"
    );

    // The Dockerfile makes the same image (it is not built here).
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    for line in [
        "FROM scratch".to_string(),
        "bash hack/image/rootfs.sh target/release/hawser".into(),
        "USER 65532:65532".into(),
        "EXPOSE 8443/tcp 8080/tcp".into(),
        r#"ENTRYPOINT ["/usr/local/bin/hawser"]"#.into(),
        r#"CMD ["run"]"#.into(),
        format!(
            "org.opencontainers.image.version={}",
            env!("CARGO_PKG_VERSION")
        ),
        format!(
            "org.opencontainers.image.source={}",
            env!("CARGO_PKG_REPOSITORY")
        ),
        "org.opencontainers.image.licenses=Apache-2.0".into(),
    ] {
        assert!(dockerfile.contains(&line), "Dockerfile lacks {line}");
    }

    let root = container.rootfs();
    let mut files: Vec<String> = walk(&root)
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    files.sort();
    let libs: Vec<&String> = files.iter().filter(|f| f.contains(".so")).collect();
    assert!(
        libs.iter().any(|f| f.starts_with("lib64/ld-linux"))
            && libs.iter().any(|f| f.ends_with("/libc.so.6")),
        "the loader and glibc: {files:?}"
    );
    let others: Vec<&String> = files.iter().filter(|f| !f.contains(".so")).collect();
    assert_eq!(
        others,
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "usr/local/bin/hawser",
            "usr/share/doc/hawser/LICENSE",
            "usr/share/doc/hawser/THIRD-PARTY-LICENSES.txt",
        ],
        "nothing else in the image"
    );
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let roots = read("etc/ssl/certs/ca-certificates.crt")
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    assert!(roots >= 100, "the CA bundle has {roots} certificates");
    assert!(read("etc/passwd").contains(":65532:65532:"));
    assert!(read("usr/share/doc/hawser/LICENSE").contains("Apache License"));
    let third = read("usr/share/doc/hawser/THIRD-PARTY-LICENSES.txt");
    for krate in ["kube-client", "aws-sdk-ec2", "rustls", "tokio"] {
        assert!(third.contains(&format!("  - {krate} ")), "{krate} listed");
    }

    let out = container
        .run(&[], &[], &["/usr/local/bin/hawser", "--version"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("hawser {}", env!("CARGO_PKG_VERSION")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file (not directory) under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// hack/image.sh run again on the binary in the image gives the image
/// the tests run, to the digest: a release can be rebuilt and checked.
#[tokio::test]
async fn the_same_binary_gives_the_same_image_digest() {
    let archive = image::archive();
    let mut container = image::Container::from_archive(&archive);
    let binary = container.rootfs().join("usr/local/bin/hawser");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("hawser");
    std::fs::copy(&binary, &copy).unwrap();
    let again = dir.path().join("again.oci.tar");
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/image.sh"))
        .arg("--binary")
        .arg(&copy)
        .arg("--output")
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hack/image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(image::digest(&again), image::digest(&archive));
}
