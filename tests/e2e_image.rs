//! hawser's container image (hack/image.sh), run with buildah as the
//! chart's Deployment runs it: TLS to the apiserver and to AWS from inside
//! the image, its own CA bundle, its files and configuration, and a
//! rebuild to the same digest.

use crate::e2e_install::{
    activated, app, comes_back_hardened, on_loopback, selectors, webhook_config_name, WAIT,
};
use crate::support;

use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{api::PostParams, Api};
use serde_json::json;
use support::install::{AsDeployed, Launch, Release, Until};
use support::*;

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
