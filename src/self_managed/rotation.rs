//! The rotation's state, kept in the Secret: the pairs, the phase, the
//! pure decision of the next step, and the Secret's encoding.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{api::core::v1::Secret, ByteString};
use kube::core::ObjectMeta;

use super::{Config, PHASE_ANNOTATION, SINCE_ANNOTATION};
use crate::certs::GeneratedCerts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Steady,
    AddingCa,
    DroppingOldCa,
}

impl Phase {
    pub(super) fn as_str(self) -> &'static str {
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

pub(super) fn to_secret(cfg: &Config, state: &State, resource_version: Option<String>) -> Secret {
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

pub(super) fn from_secret(secret: &Secret) -> Result<State, String> {
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
