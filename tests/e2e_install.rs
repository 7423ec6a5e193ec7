//! Installed as users install it, against the real apiserver:
//! - `helm install` with the chart's defaults blocks no write while hawser
//!   is not running; hawser started exactly as the rendered Deployment
//!   says (args, env, ports, probes) activates its webhooks by itself, and
//!   the same Deployment then comes back hardened;
//! - a permission the chart lacks is reported (Event and log), not a hang.

use crate::support;

use std::{process::Command, time::Duration};

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

const WAIT: Duration = Duration::from_secs(60);

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

/// The chart's values for a hawser with the vpce controller on, watching
/// only `namespace`, whose AWS endpoint is `aws` (moto over HTTPS).
fn with_controllers(id: &str, namespace: &str, aws: &str) -> Vec<String> {
    let mut values = on_loopback(id);
    values.extend([
        "controllers={vpce}".into(),
        format!("clusterName={id}"),
        format!("watchNamespace={namespace}"),
        format!("aws.endpointUrl={aws}"),
        format!("aws.region={}", support::moto::REGION),
        "extraEnv[0].name=AWS_ACCESS_KEY_ID".into(),
        "extraEnv[0].value=testing".into(),
        "extraEnv[1].name=AWS_SECRET_ACCESS_KEY".into(),
        "extraEnv[1].value=testing".into(),
    ]);
    values
}

/// What rustls logs when the trust store cannot be loaded (a missing,
/// unreadable or empty CA bundle).
fn trust_store_complaints(log: &str) -> bool {
    log.contains("native root CA") || log.contains("no native root")
}

/// The image hack/image.sh built, run as the chart's Deployment runs it
/// (its args and env; the image's entrypoint and user; the token in a
/// mounted directory) with controllers on, so that it must reach both the
/// apiserver and an AWS endpoint over TLS: it becomes ready (the AWS
/// identity check passed; the endpoint's test CA is mounted into
/// /etc/ssl/certs beside the image's bundle), activates its webhooks, and
/// a privileged Deployment created through the apiserver comes back
/// hardened. This is the binary in the image, with the libraries in the
/// image, not the host's. That the image's own bundle is what it trusts is
/// `the_image_trusts_its_own_ca_bundle_and_serves_mounted_certificates`.
#[tokio::test]
async fn the_image_runs_as_deployed_reaches_aws_over_tls_and_hardens() {
    let client = client().await;
    let id = unique("image");
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let home = TestNamespace::create(&client, &unique("image-home"), &[]).await;
    let aws = support::moto::TlsMoto::start().await;
    let values = with_controllers(&id, &ns.name, &aws.url);
    let release = Release::install(&unique("hawser"), &home.name, &values);
    let manifest = release.manifest();
    let config_name = webhook_config_name(&manifest);
    let inert = selectors(&client, &config_name).await;
    let deployment = manifest.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = image::Container::from_archive(&image::archive());
    let launch = Launch::Image {
        container: &container,
        mounts: vec![(aws.ca.as_path(), "/etc/ssl/certs/hawser-test-ca.pem")],
    };
    // Ready means the AWS identity check answered, over TLS.
    let hawser = AsDeployed::start(&release, deployment, launch, Until::Ready).await;
    let log = hawser.log();
    assert!(log.contains("AWS identity confirmed"), "{log}");
    assert!(!trust_store_complaints(&log), "{log}");
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

/// The same image with nothing added to its trust store, in the chart's
/// `directory` certificate mode (the serving certificate in a volume, as
/// the kubelet mounts a Secret): the AWS endpoint's certificate is
/// refused, so hawser does not get ready, and it logs no complaint about
/// loading its trust store: the roots it checked against are the image's
/// own bundle, the only file in its /etc/ssl/certs. The webhook serves the
/// mounted certificate.
#[tokio::test]
async fn the_image_trusts_its_own_ca_bundle_and_serves_mounted_certificates() {
    use base64::Engine;
    use std::os::unix::fs::PermissionsExt;
    let client = client().await;
    let id = unique("image-ca");
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let home = TestNamespace::create(&client, &unique("image-ca-home"), &[]).await;
    let aws = support::moto::TlsMoto::start().await;
    // The Secret volume: readable by the image's user (the kubelet's
    // default mode 0644), read-only.
    let certs = tempfile::tempdir().unwrap();
    write_certs(certs.path());
    std::fs::set_permissions(certs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        let path = certs.path().join(f);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let ca_pem = std::fs::read(certs.path().join("ca.crt")).unwrap();
    let mut values = with_controllers(&id, &ns.name, &aws.url);
    values.extend([
        "certs.mode=directory".into(),
        format!(
            "certs.caBundle={}",
            base64::engine::general_purpose::STANDARD.encode(&ca_pem)
        ),
    ]);
    let release = Release::install(&unique("hawser"), &home.name, &values);
    let manifest = release.manifest();
    let deployment = manifest.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let mount = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
        ["mountPath"]
        .as_str()
        .expect("directory mode mounts the certificate Secret")
        .to_string();
    let container = image::Container::from_archive(&image::archive());
    let launch = Launch::Image {
        container: &container,
        mounts: vec![(certs.path(), mount.as_str())],
    };
    let hawser = AsDeployed::start(&release, deployment, launch, Until::Live).await;
    eventually("the AWS identity check to fail", WAIT, || async {
        hawser
            .log()
            .contains("AWS identity check failed")
            .then_some(())
    })
    .await;
    let log = hawser.log();
    assert!(!log.contains("AWS identity confirmed"), "{log}");
    assert!(!trust_store_complaints(&log), "{log}");
    assert_eq!(hawser.admin_status("/readyz").await, 503, "{log}");
    let url = format!("https://127.0.0.1:{}", hawser.webhook_port);
    assert!(
        trusted_by(&url, &ca_pem).await,
        "the webhook serves the mounted certificate:\n{log}"
    );
}

/// The image is what docs/install.md and the chart say: user 65532,
/// entrypoint hawser with cmd run, ports 8443 and 8080, the OCI labels,
/// only the files hack/image/rootfs.sh lists, at most 25 MB compressed;
/// `--version` runs in it; and the Dockerfile describes the same image.
#[tokio::test]
async fn the_image_holds_what_the_docs_say() {
    let archive = image::archive();
    let size = std::fs::metadata(&archive).unwrap().len();
    assert!(size <= 25_000_000, "the archive is {size} bytes");
    let mut container = image::Container::from_archive(&archive);
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
    let commit = revision.strip_suffix("-dirty").unwrap_or(revision);
    assert!(
        commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
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
            "usr/share/doc/ca-certificates/copyright",
            "usr/share/doc/hawser/LICENSE",
            "usr/share/doc/hawser/THIRD-PARTY-LICENSES.txt",
            "usr/share/doc/libc6/copyright",
            "usr/share/doc/libgcc-s1/copyright",
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
/// the tests run, to the digest (same commit, same machine); and
/// `skopeo copy`, the push in docs/install.md, keeps that digest.
#[tokio::test]
async fn the_image_rebuilds_to_the_same_digest_and_skopeo_keeps_it() {
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
    let digest = image::digest(&archive);
    assert_eq!(image::digest(&again), digest);

    // To an OCI layout directory, standing in for the registry.
    let digest_file = dir.path().join("digest");
    let out = Command::new("skopeo")
        .arg("copy")
        .arg("--digestfile")
        .arg(&digest_file)
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!(
            "oci:{}:hawser",
            dir.path().join("layout").display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap().trim(),
        digest
    );
}
