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

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::{
    api::{
        admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
        core::v1::Secret,
    },
    ByteString,
};
use kube::{api::PostParams, core::ObjectMeta, Api, Client};
use rustls::crypto::CryptoProvider;
use tokio_util::sync::CancellationToken;

mod registration;

use registration::Synced;
pub use registration::NAMESPACE_SELECTOR_ANNOTATION;

use crate::{
    admin::Readiness,
    certs::{generate, CertRequest, GeneratedCerts},
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Steady,
    AddingCa,
    DroppingOldCa,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Steady => "steady",
            Phase::AddingCa => "adding-ca",
            Phase::DroppingOldCa => "dropping-old-ca",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Phase::Steady, Phase::AddingCa, Phase::DroppingOldCa]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// One CA with the serving certificate it signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub ca_crt: String,
    pub ca_key: String,
    pub tls_crt: String,
    pub tls_key: String,
}

impl From<GeneratedCerts> for Pair {
    fn from(g: GeneratedCerts) -> Self {
        Pair {
            ca_crt: g.ca_pem,
            ca_key: g.ca_key_pem,
            tls_crt: g.cert_pem,
            tls_key: g.key_pem,
        }
    }
}

/// What the Secret holds.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// What replicas serve.
    pub current: Pair,
    /// The pair being introduced (adding-ca) or the one being retired
    /// (dropping-old-ca); its CA is in the bundle either way.
    pub other: Option<Pair>,
    pub phase: Phase,
    /// Unix seconds when the phase began.
    pub since: i64,
}

impl State {
    pub fn fresh(pair: Pair, now: i64) -> Self {
        State {
            current: pair,
            other: None,
            phase: Phase::Steady,
            since: now,
        }
    }

    /// The CAs the webhook configurations must trust now.
    pub fn bundle(&self) -> String {
        let mut b = self.current.ca_crt.clone();
        if let Some(other) = &self.other {
            b.push_str(&other.ca_crt);
        }
        b
    }
}

#[derive(Debug, PartialEq)]
pub enum Step {
    Keep,
    /// Begin a rotation: a new CA and serving certificate join the bundle.
    AddCa,
    SwitchServing,
    DropOldCa,
}

/// The pure rotation decision. `leaf_not_after` is the serving
/// certificate's expiry; times are Unix seconds.
pub fn decide(
    state: &State,
    leaf_not_after: i64,
    now: i64,
    renew_before: Duration,
    grace: Duration,
) -> Step {
    let elapsed = now - state.since;
    let grace = grace.as_secs() as i64;
    match state.phase {
        Phase::Steady if leaf_not_after - now <= renew_before.as_secs() as i64 => Step::AddCa,
        Phase::Steady => Step::Keep,
        Phase::AddingCa if elapsed >= grace => Step::SwitchServing,
        Phase::DroppingOldCa if elapsed >= grace => Step::DropOldCa,
        _ => Step::Keep,
    }
}

/// Applies a step (pure; `new_pair` is used by [`Step::AddCa`]).
pub fn advance(state: &State, step: &Step, new_pair: Option<Pair>, now: i64) -> State {
    let mut next = state.clone();
    match step {
        Step::Keep => return next,
        Step::AddCa => {
            next.other = new_pair;
            next.phase = Phase::AddingCa;
        }
        Step::SwitchServing => {
            if let Some(incoming) = next.other.take() {
                next.other = Some(std::mem::replace(&mut next.current, incoming));
            }
            next.phase = Phase::DroppingOldCa;
        }
        Step::DropOldCa => {
            next.other = None;
            next.phase = Phase::Steady;
        }
    }
    next.since = now;
    next
}

const KEYS: [&str; 4] = ["ca.crt", "ca.key", "tls.crt", "tls.key"];

fn to_secret(cfg: &Config, state: &State, resource_version: Option<String>) -> Secret {
    let mut data = BTreeMap::new();
    let pairs = [("", Some(&state.current)), ("other-", state.other.as_ref())];
    for (prefix, pair) in pairs {
        if let Some(p) = pair {
            for (k, v) in KEYS
                .iter()
                .zip([&p.ca_crt, &p.ca_key, &p.tls_crt, &p.tls_key])
            {
                data.insert(format!("{prefix}{k}"), ByteString(v.as_bytes().to_vec()));
            }
        }
    }
    data.insert(
        "ca-bundle.crt".into(),
        ByteString(state.bundle().into_bytes()),
    );
    Secret {
        metadata: ObjectMeta {
            name: Some(cfg.secret_name.clone()),
            namespace: Some(cfg.namespace.clone()),
            resource_version,
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "hawser".to_string(),
                )]
                .into(),
            ),
            annotations: Some(
                [
                    (
                        PHASE_ANNOTATION.to_string(),
                        state.phase.as_str().to_string(),
                    ),
                    (SINCE_ANNOTATION.to_string(), state.since.to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    }
}

fn from_secret(secret: &Secret) -> Result<State, String> {
    let data = secret.data.clone().unwrap_or_default();
    let get = |k: &str| -> Option<String> {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    let pair = |prefix: &str| -> Option<Pair> {
        Some(Pair {
            ca_crt: get(&format!("{prefix}ca.crt"))?,
            ca_key: get(&format!("{prefix}ca.key"))?,
            tls_crt: get(&format!("{prefix}tls.crt"))?,
            tls_key: get(&format!("{prefix}tls.key"))?,
        })
    };
    let ann = secret.metadata.annotations.clone().unwrap_or_default();
    Ok(State {
        current: pair("").ok_or("the Secret lacks ca.crt, ca.key, tls.crt or tls.key")?,
        other: pair("other-"),
        phase: ann
            .get(PHASE_ANNOTATION)
            .and_then(|p| Phase::parse(p))
            .unwrap_or(Phase::Steady),
        since: ann
            .get(SINCE_ANNOTATION)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(tag: &str) -> Pair {
        Pair {
            ca_crt: format!("CA-{tag}\n"),
            ca_key: "k".into(),
            tls_crt: format!("TLS-{tag}"),
            tls_key: "k".into(),
        }
    }

    #[test]
    fn rotation_adds_the_new_ca_before_switching_and_drops_the_old_after() {
        let (renew, grace) = (Duration::from_secs(100), Duration::from_secs(10));
        let s0 = State::fresh(pair("a"), 0);
        assert_eq!(s0.bundle(), "CA-a\n");
        assert_eq!(decide(&s0, 1000, 899, renew, grace), Step::Keep);
        assert_eq!(decide(&s0, 1000, 900, renew, grace), Step::AddCa);

        let s1 = advance(&s0, &Step::AddCa, Some(pair("b")), 900);
        assert_eq!(
            (s1.phase, s1.current.tls_crt.as_str()),
            (Phase::AddingCa, "TLS-a"),
            "still serving the old cert"
        );
        assert_eq!(s1.bundle(), "CA-a\nCA-b\n");
        assert_eq!(decide(&s1, 1000, 909, renew, grace), Step::Keep);
        assert_eq!(decide(&s1, 1000, 910, renew, grace), Step::SwitchServing);

        let s2 = advance(&s1, &Step::SwitchServing, None, 910);
        assert_eq!(
            (s2.phase, s2.current.tls_crt.as_str()),
            (Phase::DroppingOldCa, "TLS-b")
        );
        assert_eq!(
            s2.bundle(),
            "CA-b\nCA-a\n",
            "both CAs trusted while replicas switch"
        );
        assert_eq!(decide(&s2, 5000, 919, renew, grace), Step::Keep);
        assert_eq!(decide(&s2, 5000, 920, renew, grace), Step::DropOldCa);

        let s3 = advance(&s2, &Step::DropOldCa, None, 920);
        assert_eq!(
            (s3.phase, s3.bundle()),
            (Phase::Steady, "CA-b\n".to_string())
        );
    }

    #[test]
    fn the_secret_round_trips() {
        let cfg = Config {
            namespace: "n".into(),
            secret_name: "s".into(),
            webhook_config_name: "w".into(),
            dns_names: vec![],
            ips: vec![],
            validity: Duration::from_secs(1),
            renew_before: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            interval: Duration::from_secs(1),
        };
        let s = advance(
            &State::fresh(pair("a"), 5),
            &Step::AddCa,
            Some(pair("b")),
            7,
        );
        assert_eq!(from_secret(&to_secret(&cfg, &s, None)).unwrap(), s);
    }
}
