//! `hawser certs`: a CA and a webhook serving certificate, ECDSA P-256,
//! made with rcgen. The same generator backs the tests' certificates.

use std::{net::IpAddr, path::Path, time::Duration};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use crate::cli::CertsArgs;

pub struct CertRequest {
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Validity of the serving certificate; the CA gets ten times as long so
    /// a serving certificate can be renewed under the same CA.
    pub validity: Duration,
}

pub struct GeneratedCerts {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The DNS names the apiserver uses to reach a webhook behind a Service.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

pub fn generate(req: &CertRequest) -> Result<GeneratedCerts, rcgen::Error> {
    // Backdate the start a little so a skewed apiserver clock does not
    // reject a certificate made a second ago; the end is counted from now.
    let now = OffsetDateTime::now_utc();
    let not_before = now - time::Duration::minutes(5);
    let validity = time::Duration::try_from(req.validity).unwrap_or(time::Duration::days(365));

    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "hawser-webhook-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = now + validity * 10;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca, ca_key)?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = CertificateParams::new(req.dns_names.clone())?;
    leaf.subject_alt_names
        .extend(req.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    leaf.distinguished_name = DistinguishedName::new();
    let cn = req
        .dns_names
        .first()
        .cloned()
        .or_else(|| req.ips.first().map(|ip| ip.to_string()))
        .unwrap_or_else(|| "hawser-webhook".into());
    leaf.distinguished_name.push(DnType::CommonName, cn);
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = now + validity;
    let cert = leaf.signed_by(&key, &ca)?;

    Ok(GeneratedCerts {
        ca_pem: ca.pem(),
        ca_key_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` into `args.out`. Each file is
/// written beside its final name and renamed over it, so a server watching
/// the directory never reads half a file.
pub fn write_to_dir(args: &CertsArgs) -> anyhow::Result<()> {
    let mut dns_names = service_dns_names(&args.service, &args.namespace);
    dns_names.extend(args.dns_names.iter().cloned());
    let generated = generate(&CertRequest {
        dns_names,
        ips: args.ips.clone(),
        validity: args.validity,
    })
    .context("generating certificates")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_atomic(&args.out.join("ca.crt"), generated.ca_pem.as_bytes(), 0o644)?;
    // The key goes first: a watcher that sees the new certificate must be
    // able to find its key already there.
    write_atomic(
        &args.out.join("tls.key"),
        generated.key_pem.as_bytes(),
        0o600,
    )?;
    write_atomic(
        &args.out.join("tls.crt"),
        generated.cert_pem.as_bytes(),
        0o644,
    )?;
    println!(
        "wrote ca.crt, tls.crt and tls.key to {}",
        args.out.display()
    );
    Ok(())
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions on {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn serving_cert_has_the_names_and_is_signed_by_the_ca() {
        let g = generate(&CertRequest {
            dns_names: service_dns_names("hawser-webhook", "hawser-system"),
            ips: vec!["127.0.0.1".parse().unwrap()],
            validity: Duration::from_secs(86400),
        })
        .unwrap();
        let leaf_pem = ::x509_parser::pem::parse_x509_pem(g.cert_pem.as_bytes())
            .unwrap()
            .1;
        let leaf = leaf_pem.parse_x509().unwrap();
        let ca_pem = ::x509_parser::pem::parse_x509_pem(g.ca_pem.as_bytes())
            .unwrap()
            .1;
        let ca = ca_pem.parse_x509().unwrap();

        assert!(ca.is_ca());
        assert!(!leaf.is_ca());
        leaf.verify_signature(Some(ca.public_key()))
            .expect("leaf signed by the CA");
        let sans = leaf.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = sans
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(
            names.contains(&"hawser-webhook.hawser-system.svc".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"ip:[127, 0, 0, 1]".to_string()),
            "{names:?}"
        );
        // ECDSA P-256
        assert_eq!(
            leaf.public_key().algorithm.algorithm,
            x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        );
        let lifetime =
            leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
        assert!(
            (86400 + 299..=86400 + 301).contains(&lifetime),
            "{lifetime}"
        );
        let left =
            leaf.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            (86300..=86400).contains(&left),
            "expires in {left}s, not a day from now"
        );
    }

    #[test]
    fn write_to_dir_writes_three_files_with_a_private_key_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        write_to_dir(&CertsArgs {
            service: "s".into(),
            namespace: "n".into(),
            ips: vec![],
            dns_names: vec![],
            validity: Duration::from_secs(3600),
            out: out.clone(),
        })
        .unwrap();
        for f in ["ca.crt", "tls.crt", "tls.key"] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let mode = std::fs::metadata(out.join("tls.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
