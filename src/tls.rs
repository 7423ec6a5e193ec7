//! Serving certificate for the admission server: loaded from a directory,
//! re-read on an interval, swapped in without a restart. A broken or
//! half-written pair never replaces the last good one.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
    ServerConfig,
};

use crate::metrics::Metrics;

pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {detail}")]
    BadPem { path: PathBuf, detail: String },
    #[error("{dir}: the key does not match the certificate, or is unusable: {detail}")]
    Mismatch { dir: PathBuf, detail: String },
    #[error("{path}: cannot parse the certificate: {detail}")]
    BadCertificate { path: PathBuf, detail: String },
}

/// A loaded key pair and what we report about it.
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// `notAfter` of the leaf, as Unix seconds.
    pub not_after: i64,
}

/// The raw file contents; compared to decide whether anything changed.
#[derive(PartialEq, Eq, Clone, Default)]
struct Snapshot {
    cert: Vec<u8>,
    key: Vec<u8>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn snapshot(dir: &Path) -> Result<Snapshot, TlsError> {
    Ok(Snapshot {
        cert: read(&dir.join(CERT_FILE))?,
        key: read(&dir.join(KEY_FILE))?,
    })
}

fn parse(dir: &Path, snap: &Snapshot, provider: &CryptoProvider) -> Result<LoadedCert, TlsError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let chain = CertificateDer::pem_slice_iter(&snap.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: cert_path.clone(),
            detail: e.to_string(),
        })?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        path: cert_path.clone(),
    })?;
    let not_after = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| TlsError::BadCertificate {
            path: cert_path.clone(),
            detail: e.to_string(),
        })?
        .1
        .validity()
        .not_after
        .timestamp();
    let key = PrivateKeyDer::from_pem_slice(&snap.key).map_err(|e| TlsError::BadPem {
        path: key_path,
        detail: e.to_string(),
    })?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Mismatch {
            dir: dir.to_owned(),
            detail: e.to_string(),
        })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        not_after,
    })
}

/// Loads a PEM pair held elsewhere (a Secret); `source` names it in errors.
pub fn load_pem(
    source: &str,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<LoadedCert, TlsError> {
    let snap = Snapshot {
        cert: cert.to_vec(),
        key: key.to_vec(),
    };
    parse(Path::new(source), &snap, provider)
}

/// Loads `tls.crt` and `tls.key` from `dir`.
pub fn load_dir(dir: &Path, provider: &CryptoProvider) -> Result<LoadedCert, TlsError> {
    parse(dir, &snapshot(dir)?, provider)
}

/// Hands rustls whatever certificate is current; [`CertReloader`] swaps it.
pub struct SwappableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl SwappableCert {
    pub fn new(initial: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(initial),
        }
    }

    pub fn swap(&self, next: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl fmt::Debug for SwappableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SwappableCert")
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server config that serves whatever `cert` holds, over HTTP/2 and
/// HTTP/1.1 (the apiserver speaks both).
pub fn server_config(
    cert: Arc<SwappableCert>,
    provider: Arc<CryptoProvider>,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Watches a certificate directory and swaps changed pairs into service.
pub struct CertReloader {
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    cert: Arc<SwappableCert>,
    metrics: Arc<Metrics>,
    /// The files as last read, good or bad, so a broken pair is reported
    /// once rather than on every tick.
    seen: Snapshot,
}

impl CertReloader {
    /// Loads the directory once; a failure here is fatal at start-up.
    pub fn start(
        dir: &Path,
        provider: Arc<CryptoProvider>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, TlsError> {
        let snap = snapshot(dir)?;
        let loaded = parse(dir, &snap, &provider)?;
        metrics.cert_expiry.set(loaded.not_after as f64);
        Ok(Self {
            dir: dir.to_owned(),
            provider,
            cert: Arc::new(SwappableCert::new(loaded.key)),
            metrics,
            seen: snap,
        })
    }

    pub fn cert(&self) -> Arc<SwappableCert> {
        self.cert.clone()
    }

    /// Re-reads the directory; returns true when a new pair went into service.
    pub fn check(&mut self) -> bool {
        let snap = match snapshot(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                // Mid-swap a file can be missing for a moment; keep serving.
                tracing::debug!(error = %e, "certificate directory not readable; keeping the current certificate");
                return false;
            }
        };
        if snap == self.seen {
            return false;
        }
        self.seen = snap.clone();
        match parse(&self.dir, &snap, &self.provider) {
            Ok(loaded) => {
                self.cert.swap(loaded.key);
                self.metrics.cert_expiry.set(loaded.not_after as f64);
                self.metrics
                    .cert_reloads
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(dir = %self.dir.display(), not_after = loaded.not_after, "serving certificate reloaded");
                true
            }
            Err(e) => {
                self.metrics
                    .cert_reloads
                    .with_label_values(&["error"])
                    .inc();
                tracing::error!(error = %e, "new serving certificate rejected; keeping the last good one");
                false
            }
        }
    }

    /// Checks every `interval` until `shutdown` fires.
    pub async fn run(mut self, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => { self.check(); }
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{generate, CertRequest};

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn write_pair(dir: &Path, names: &[&str]) -> crate::certs::GeneratedCerts {
        let generated = generate(&CertRequest {
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            ips: vec![],
            validity: Duration::from_secs(3600),
        })
        .unwrap();
        std::fs::write(dir.join(CERT_FILE), &generated.cert_pem).unwrap();
        std::fs::write(dir.join(KEY_FILE), &generated.key_pem).unwrap();
        generated
    }

    fn leaf_der(cert: &SwappableCert) -> Vec<u8> {
        cert.current().cert[0].to_vec()
    }

    #[test]
    fn reload_swaps_a_good_pair_and_keeps_the_last_good_one_on_error() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), &["a.example"]);
        let metrics = Arc::new(Metrics::new().unwrap());
        let mut reloader = CertReloader::start(dir.path(), provider(), metrics.clone()).unwrap();
        let swappable = reloader.cert();
        let first = leaf_der(&swappable);

        assert!(!reloader.check(), "unchanged files must not reload");

        write_pair(dir.path(), &["b.example"]);
        assert!(reloader.check());
        let second = leaf_der(&swappable);
        assert_ne!(first, second);

        // A key that does not belong to the certificate is refused.
        let other = generate(&CertRequest {
            dns_names: vec!["c.example".into()],
            ips: vec![],
            validity: Duration::from_secs(3600),
        })
        .unwrap();
        std::fs::write(dir.path().join(KEY_FILE), &other.key_pem).unwrap();
        assert!(!reloader.check());
        assert_eq!(leaf_der(&swappable), second);

        std::fs::write(dir.path().join(CERT_FILE), b"garbage").unwrap();
        assert!(!reloader.check());
        assert_eq!(leaf_der(&swappable), second);

        assert_eq!(
            metrics.cert_reloads.with_label_values(&["success"]).get(),
            1
        );
        assert_eq!(metrics.cert_reloads.with_label_values(&["error"]).get(), 2);
    }

    #[test]
    fn follows_a_secret_volume_symlink_swap() {
        // A Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("..v1");
        let v2 = dir.path().join("..v2");
        std::fs::create_dir(&v1).unwrap();
        std::fs::create_dir(&v2).unwrap();
        write_pair(&v1, &["one.example"]);
        write_pair(&v2, &["two.example"]);
        std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
        for f in [CERT_FILE, KEY_FILE] {
            std::os::unix::fs::symlink(format!("..data/{f}"), dir.path().join(f)).unwrap();
        }
        let metrics = Arc::new(Metrics::new().unwrap());
        let mut reloader = CertReloader::start(dir.path(), provider(), metrics).unwrap();
        let before = leaf_der(&reloader.cert());

        // The kubelet swaps atomically: new link, then rename over ..data.
        std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        assert!(reloader.check());
        assert_ne!(before, leaf_der(&reloader.cert()));
    }

    #[test]
    fn start_fails_with_the_path_when_files_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let err = CertReloader::start(dir.path(), provider(), metrics)
            .err()
            .unwrap();
        assert!(err.to_string().contains("tls.crt"), "{err}");
    }
}
