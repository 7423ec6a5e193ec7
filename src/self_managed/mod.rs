//! `--certs=self-managed`: hawser keeps its own CA and serving certificate
//! in a Secret in its namespace, patches the CA bundle into its webhook
//! configurations, and rotates both before they expire.
//!
//! Rotation never leaves the apiserver without a trusted certificate:
//! 1. *adding-ca*: a new CA and serving certificate are made; the bundle
//!    trusts the old and the new CA; replicas still serve the old cert.
//! 2. after `grace`, *dropping-old-ca*: replicas switch to the new serving
//!    certificate; the bundle still trusts both.
//! 3. after `grace` again, *steady*: the bundle trusts only the new CA.
//!
//! `grace` must exceed the time a replica takes to notice a change (the
//! reload interval) plus the apiserver's pick-up of the new bundle.
//! Every replica reads the Secret each reload interval and serves what it
//! holds; any replica may advance the rotation, and the Secret's
//! resourceVersion makes racing replicas (at start or at rotation)
//! converge on one result.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    core::v1::Secret,
};
use kube::{api::PostParams, Api, Client};
use rustls::crypto::CryptoProvider;
use tokio_util::sync::CancellationToken;

mod registration;
mod rotation;

use registration::Synced;
pub use registration::NAMESPACE_SELECTOR_ANNOTATION;
pub use rotation::{advance, decide, Pair, Phase, State, Step};
use rotation::{from_secret, to_secret};

use crate::{
    admin::Readiness,
    certs::{generate, CertRequest},
    metrics::Metrics,
    tls::{self, SwappableCert},
};

pub const PHASE_ANNOTATION: &str = "certs.hawser.io/phase";
pub const SINCE_ANNOTATION: &str = "certs.hawser.io/phase-since";

#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub secret_name: String,
    pub webhook_config_name: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub validity: Duration,
    pub renew_before: Duration,
    pub grace: Duration,
    pub interval: Duration,
}

pub struct SelfManaged {
    cfg: Config,
    secrets: Api<Secret>,
    provider: Arc<CryptoProvider>,
    cert: Arc<SwappableCert>,
    metrics: Arc<Metrics>,
    served: String,
    gate: registration::Gate,
    /// Why the webhooks are not active yet, while they wait.
    waiting: Option<String>,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl SelfManaged {
    fn new_pair(&self) -> anyhow::Result<Pair> {
        Ok(generate(&CertRequest {
            dns_names: self.cfg.dns_names.clone(),
            ips: self.cfg.ips.clone(),
            validity: self.cfg.validity,
        })?
        .into())
    }

    /// Loads the Secret, creating it if no replica has yet. Fails start-up
    /// if it cannot.
    pub async fn start(
        client: Client,
        cfg: Config,
        provider: Arc<CryptoProvider>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
    ) -> anyhow::Result<Self> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
        let mut this = SelfManaged {
            cfg,
            secrets,
            provider,
            cert: Arc::new(SwappableCert::new(placeholder_key()?)),
            metrics,
            served: String::new(),
            gate: registration::Gate { readiness, client },
            waiting: None,
        };
        let state = match this.secrets.get_opt(&this.cfg.secret_name).await? {
            Some(s) => from_secret(&s).map_err(anyhow::Error::msg)?,
            None => {
                let state = State::fresh(this.new_pair()?, now());
                match this
                    .secrets
                    .create(
                        &PostParams {
                            field_manager: Some("hawser".into()),
                            ..Default::default()
                        },
                        &to_secret(&this.cfg, &state, None),
                    )
                    .await
                {
                    Ok(_) => {
                        tracing::info!(secret = %this.cfg.secret_name, "created the webhook certificate Secret");
                        state
                    }
                    // Another replica won the race: use its certificate.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        from_secret(&this.secrets.get(&this.cfg.secret_name).await?)
                            .map_err(anyhow::Error::msg)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        this.serve(&state.current)?;
        this.sync_webhooks(&state.bundle()).await;
        Ok(this)
    }

    pub fn cert(&self) -> Arc<SwappableCert> {
        self.cert.clone()
    }

    fn serve(&mut self, pair: &Pair) -> anyhow::Result<i64> {
        let loaded = tls::load_pem(
            &format!("Secret {}", self.cfg.secret_name),
            pair.tls_crt.as_bytes(),
            pair.tls_key.as_bytes(),
            &self.provider,
        )?;
        if self.served != pair.tls_crt {
            self.cert.swap(loaded.key);
            self.metrics.cert_expiry.set(loaded.not_after as f64);
            if !self.served.is_empty() {
                self.metrics
                    .cert_reloads
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(
                    not_after = loaded.not_after,
                    "now serving the rotated certificate"
                );
            }
            self.served = pair.tls_crt.clone();
        }
        Ok(loaded.not_after)
    }

    /// One pass: read, maybe advance the rotation, serve, sync the bundle.
    pub async fn tick(&mut self) -> anyhow::Result<()> {
        let secret = self.secrets.get(&self.cfg.secret_name).await?;
        let mut state = from_secret(&secret).map_err(anyhow::Error::msg)?;
        let not_after = self.serve(&state.current)?;
        let step = decide(
            &state,
            not_after,
            now(),
            self.cfg.renew_before,
            self.cfg.grace,
        );
        if step != Step::Keep {
            let new_pair = (step == Step::AddCa).then(|| self.new_pair()).transpose()?;
            let next = advance(&state, &step, new_pair, now());
            let pp = PostParams {
                field_manager: Some("hawser".into()),
                ..Default::default()
            };
            match self
                .secrets
                .replace(
                    &self.cfg.secret_name,
                    &pp,
                    &to_secret(&self.cfg, &next, secret.metadata.resource_version.clone()),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(
                        ?step,
                        phase = next.phase.as_str(),
                        "certificate rotation advanced"
                    );
                    state = next;
                    self.serve(&state.current)?;
                }
                // Another replica advanced it first; the next pass reads it.
                Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        self.sync_webhooks(&state.bundle()).await;
        Ok(())
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            // While the webhooks wait for activation, look again every
            // second: the wait is what stands between a ready replica and
            // admission.
            let pause = match self.waiting {
                Some(_) => self.cfg.interval.min(Duration::from_secs(1)),
                None => self.cfg.interval,
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {
                    if let Err(e) = self.tick().await {
                        self.metrics.cert_reloads.with_label_values(&["error"]).inc();
                        tracing::warn!(error = %e, "self-managed certificates: keeping the current certificate");
                    }
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Makes every webhook of both configurations trust `bundle` and,
    /// once hawser can answer, admit (see [`registration`]).
    async fn sync_webhooks(&mut self, bundle: &str) {
        let name = self.cfg.webhook_config_name.clone();
        let results = [
            registration::sync::<MutatingWebhookConfiguration>(
                &self.gate.client,
                &name,
                bundle,
                &self.gate,
            )
            .await,
            registration::sync::<ValidatingWebhookConfiguration>(
                &self.gate.client,
                &name,
                bundle,
                &self.gate,
            )
            .await,
        ];
        let mut waiting = None;
        // None: unknown (a call failed), the gauge keeps its value.
        let mut active = Some(true);
        for (kind, result) in ["mutating", "validating"].into_iter().zip(results) {
            match result {
                Ok(Synced::Waiting(why)) => {
                    waiting = Some(format!("{kind}: {why}"));
                    active = active.map(|_| false);
                }
                Ok(Synced::Absent) => active = active.map(|_| false),
                Ok(Synced::Done) => {}
                Err(e) => {
                    active = None;
                    tracing::warn!(error = %e, config = %name, kind, "cannot update the webhook configuration")
                }
            }
        }
        if let Some(active) = active {
            self.metrics.webhooks_active.set(i64::from(active));
        }
        if waiting.is_some() && waiting != self.waiting {
            tracing::info!(reason = waiting.as_deref(), config = %name, "webhooks not activated yet");
        }
        self.waiting = waiting;
    }
}

/// Something to hand rustls before the Secret has been read; replaced in
/// `start` before the server accepts a connection.
fn placeholder_key() -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    let g = generate(&CertRequest {
        dns_names: vec!["placeholder.invalid".into()],
        ips: vec![],
        validity: Duration::from_secs(60),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    Ok(tls::load_pem(
        "placeholder",
        g.cert_pem.as_bytes(),
        g.key_pem.as_bytes(),
        &provider,
    )?
    .key)
}
