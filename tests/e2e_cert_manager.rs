//! cert-manager mode with the chart's default chain: a CA whose key
//! survives its renewals (`rotationPolicy: Never`) signs the serving
//! certificate. cert-manager cannot be installed here, so the test plays
//! its three parts the way they behave:
//! - the issuer: a new serving key at each renewal, signed by the CA; a
//!   renewed CA keeps its key and name;
//! - the kubelet: the Secret's files swapped in at once, by renaming a
//!   `..data` symlink to a new directory, as its atomic writer does;
//! - the CA injector: the webhook configurations' caBundle set to the
//!   Secret's `ca.crt`.
//!
//! Under load, the serving certificate renews, then the CA renews twice
//! (once the injector first, once the kubelet first): no admission fails.
//! A CA that changes its key, as the chart's old self-signed default did,
//! breaks admissions as soon as the caBundle moves: the same load would
//! count that.

use crate::support;

use std::{
    path::{Path, PathBuf},
    sync::atomic::Ordering,
    time::Duration,
};

use k8s_openapi::{
    api::{
        admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
        apps::v1::Deployment,
    },
    ByteString,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use serde_json::{json, Value};
use support::*;

/// The CA as the chart's `<release>-ca` Certificate makes it.
struct Ca {
    key_pem: String,
    serial: u64,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let key_pem = key.serialize_pem();
        Self {
            issuer: Self::sign(key, 1),
            key_pem,
            serial: 1,
        }
    }

    fn sign(key: KeyPair, serial: u64) -> CertifiedIssuer<'static, KeyPair> {
        let now = time::OffsetDateTime::now_utc();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, "hawser-webhook-ca");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.serial_number = Some(SerialNumber::from(serial));
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + time::Duration::days(3650);
        CertifiedIssuer::self_signed(p, key).unwrap()
    }

    /// Renews the CA: with the same key (`rotationPolicy: Never`, the
    /// chart's default chain) or a new one (a self-signed certificate
    /// renewed with `rotationPolicy: Always`).
    fn renew(&mut self, new_key: bool) {
        if new_key {
            self.key_pem = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .unwrap()
                .serialize_pem();
        }
        self.serial += 1;
        let key = KeyPair::from_pem(&self.key_pem).unwrap();
        self.issuer = Self::sign(key, self.serial);
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A serving certificate for 127.0.0.1 with a key of its own, as the
    /// chart's serving Certificate (`rotationPolicy: Always`) gets at each
    /// renewal: the Secret's `tls.crt`, `tls.key` and `ca.crt`.
    fn issue(&self) -> [(&'static str, String); 3] {
        let now = time::OffsetDateTime::now_utc();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + time::Duration::days(90);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        [
            ("tls.crt", cert.pem()),
            ("tls.key", key.serialize_pem()),
            ("ca.crt", self.pem()),
        ]
    }
}

/// A Secret volume as the kubelet keeps it: each file a symlink into
/// `..data`, itself a symlink to a timestamped directory; an update writes
/// a new directory and renames a new `..data` over the old one.
struct Mount {
    dir: PathBuf,
    version: u32,
}

impl Mount {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            dir: dir.to_owned(),
            version: 0,
        }
    }

    fn write(&mut self, files: &[(&str, String)]) {
        use std::os::unix::fs::symlink;
        self.version += 1;
        let data = format!("..2026_12_05_{:02}", self.version);
        std::fs::create_dir(self.dir.join(&data)).unwrap();
        for (name, content) in files {
            std::fs::write(self.dir.join(&data).join(name), content).unwrap();
        }
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        symlink(&data, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        for (name, _) in files {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(name), link).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

/// What cert-manager's CA injector does: every webhook of both
/// configurations gets `ca` as its caBundle.
async fn inject(client: &Client, name: &str, ca: &str) {
    let bundle = |v: Value| -> Value {
        let hooks: Vec<Value> = v["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let mut h = h.clone();
                h["clientConfig"]["caBundle"] = json!(ByteString(ca.as_bytes().to_vec()));
                h
            })
            .collect();
        json!({ "webhooks": hooks })
    };
    let pp = PatchParams::default();
    let m: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let current = serde_json::to_value(m.get(name).await.unwrap()).unwrap();
    m.patch(name, &pp, &Patch::Merge(bundle(current)))
        .await
        .unwrap();
    let v: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let current = serde_json::to_value(v.get(name).await.unwrap()).unwrap();
    v.patch(name, &pp, &Patch::Merge(bundle(current)))
        .await
        .unwrap();
}

async fn reloads(hawser: &Hawser, n: f64) {
    let series = r#"hawser_webhook_cert_reloads_total{result="success"}"#;
    eventually(
        &format!("hawser to load certificate #{}", n + 1.0),
        Duration::from_secs(30),
        || async { (hawser.metric(series).await >= n).then_some(()) },
    )
    .await;
}

/// Waits until `more` admissions beyond now have succeeded.
async fn admitted(load: &AdmissionLoad, more: u32, what: &str) {
    let from = load.ok.load(Ordering::Relaxed);
    eventually(what, Duration::from_secs(60), || {
        let n = load.ok.load(Ordering::Relaxed);
        async move { (n >= from + more).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn renewals_of_the_serving_certificate_and_of_the_ca_fail_no_admission() {
    let client = client().await;
    let id = unique("certmgr");
    let ns = TestNamespace::create(&client, &id, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Ca::new();
    let mut mount = Mount::new(&dir.path().join("tls"));
    mount.write(&ca.issue());
    let hawser = Hawser::start_with_certs(Some(&mount.dir), &[]).await;
    let mut opts = webhook_options(&hawser, &id);
    opts.ca_bundle = ca.pem().into_bytes();
    let _hooks = Registration::create_with(&client, &opts, Hooks::Both).await;
    wait_for_hooks(&client, &ns.name, Hooks::Both).await;
    let load = AdmissionLoad::start(&client, &ns.name);
    admitted(&load, 20, "admissions before any renewal").await;

    // The serving certificate renews under the same CA.
    mount.write(&ca.issue());
    reloads(&hawser, 1.0).await;
    admitted(&load, 20, "admissions after the serving renewal").await;

    // The CA renews; the injector moves the caBundle first, while hawser
    // still serves a certificate signed before the renewal.
    ca.renew(false);
    inject(&client, &opts.name, &ca.pem()).await;
    admitted(&load, 40, "admissions with only the renewed CA trusted").await;
    mount.write(&ca.issue());
    reloads(&hawser, 2.0).await;
    admitted(&load, 20, "admissions after the CA renewal").await;

    // The CA renews again; this time the kubelet is first: hawser serves a
    // certificate signed after the renewal while only the old CA is trusted.
    ca.renew(false);
    mount.write(&ca.issue());
    reloads(&hawser, 3.0).await;
    admitted(&load, 40, "admissions with only the previous CA trusted").await;
    inject(&client, &opts.name, &ca.pem()).await;
    admitted(&load, 20, "admissions after the second CA renewal").await;

    let (ok, failed) = load.stop().await;
    eprintln!("{ok} admissions succeeded, {failed} failed");
    assert_eq!(failed, 0, "admissions failed during the renewals");

    // A CA with a new key, as a self-signed serving certificate gets at each
    // renewal: once the caBundle moves ahead of the Secret, admission fails.
    ca.renew(true);
    inject(&client, &opts.name, &ca.pem()).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let probe = probe_deployment(&ns.name);
    let refused = eventually(
        "admission to fail once the CA changed its key",
        Duration::from_secs(30),
        || {
            let (api, dry, probe) = (api.clone(), dry.clone(), probe.clone());
            async move { api.create(&dry, &probe).await.err().map(|e| e.to_string()) }
        },
    )
    .await;
    assert!(
        refused.contains("x509") || refused.contains("certificate"),
        "{refused}"
    );
}

/// The chart's default cert-manager objects form that chain: a
/// self-signed Issuer makes a CA Certificate whose key is never rotated,
/// a CA Issuer reads that CA's Secret, and the serving Certificate is
/// issued by the CA Issuer into the Secret hawser mounts.
#[test]
fn the_charts_default_cert_manager_chain_keeps_the_ca_key() {
    let docs = support::rbac::helm_template(
        "hawser",
        "hawser-system",
        &["--set".into(), "certs.mode=cert-manager".into()],
    );
    let find = |kind: &str, name: &str| -> Value {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    let selfsigned = find("Issuer", "hawser-selfsigned");
    assert_eq!(selfsigned["spec"], json!({"selfSigned": {}}));
    let ca = find("Certificate", "hawser-ca");
    assert_eq!(ca["spec"]["isCA"], true);
    assert_eq!(ca["spec"]["privateKey"]["rotationPolicy"], "Never");
    assert_eq!(ca["spec"]["issuerRef"]["name"], "hawser-selfsigned");
    let ca_issuer = find("Issuer", "hawser-ca");
    assert_eq!(
        ca_issuer["spec"]["ca"]["secretName"],
        ca["spec"]["secretName"]
    );
    let serving = find("Certificate", "hawser-webhook");
    assert_eq!(serving["spec"]["issuerRef"]["name"], "hawser-ca");
    assert_eq!(serving["spec"]["privateKey"]["rotationPolicy"], "Always");
    let deployment = find("Deployment", "hawser");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains(serving["spec"]["secretName"].as_str().unwrap()),
        "hawser does not mount the serving Secret: {volumes}"
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let hook = find(kind, "hawser");
        assert_eq!(
            hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "hawser-system/hawser-webhook"
        );
    }

    // With an issuer of the user's, the chart makes no CA of its own.
    let docs = support::rbac::helm_template(
        "hawser",
        "hawser-system",
        &[
            "--set".into(),
            "certs.mode=cert-manager".into(),
            "--set".into(),
            "certs.certManager.issuerRef.kind=ClusterIssuer".into(),
            "--set".into(),
            "certs.certManager.issuerRef.name=corp-ca".into(),
        ],
    );
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .filter(|d| {
            d["apiVersion"]
                .as_str()
                .unwrap_or("")
                .starts_with("cert-manager.io")
        })
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("Certificate", "hawser-webhook")]);
}
