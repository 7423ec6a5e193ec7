//! `hawser manifests webhook`: the Mutating and ValidatingWebhookConfigurations,
//! built from one description of what hawser admits.
//!
//! failurePolicy, per webhook:
//! - mutate (Fail): hardening is a security control, and a Service admitted
//!   without its finalizer could lose its VPC endpoint's cleanup; letting
//!   objects through unmutated while hawser is down would make both
//!   optional. The cost: while no replica answers, creating or updating
//!   Deployments, Services and Namespaces in selected namespaces fails. Run two replicas with a PDB,
//!   and keep kube-system excluded so the cluster can always heal itself.
//! - validate (Fail): same reasoning; it is the backstop when the mutation
//!   did not run or another webhook undid it.
//! - the aws-auth guard (Ignore), with `--aws-auth-guard`: UPDATE and
//!   DELETE of ConfigMaps in kube-system, judged on `/validate-aws-auth`.
//!   A hawser outage must never stop someone repairing aws-auth, the very
//!   object whose breakage locks people out. The cost: while hawser is
//!   down, the guard is off.
//!
//! Selecting kube-system on every version: 1.21+ labels each namespace
//! `kubernetes.io/metadata.name`, so one entry selects kube-system by name
//! and sees nothing else. Kubernetes 1.20 has no such label, so a second
//! entry selects namespaces *without* it that carry the opt-out label
//! `hawser.io/admission=disabled` (which kube-system needs on those
//! versions anyway, to be excluded from the other webhooks). The two
//! never both match a namespace: on 1.21+ the second matches nothing. On
//! 1.20 it also sees the ConfigMaps of other opted-out namespaces; the
//! handler allows everything but kube-system/aws-auth at once.

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::{
    api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
        ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
    ByteString,
};
use kube::core::ObjectMeta;

use crate::cli::{ManifestKind, ManifestsArgs, WebhookManifestArgs};

/// Label (since Kubernetes 1.21) naming a namespace; used to exclude
/// kube-system and hawser's own namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Opt-out label for any namespace, and the only way to exclude a
/// namespace on clusters older than 1.21 that lack the label above.
pub const ADMISSION_OPT_OUT_LABEL: &str = "hawser.io/admission";
pub const ADMISSION_OPT_OUT_VALUE: &str = "disabled";

pub const TIMEOUT_SECONDS: i32 = 5;

/// Where the apiserver finds the webhook.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Url(String),
    Service { name: String, namespace: String },
}

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub name: String,
    pub endpoint: Endpoint,
    pub ca_bundle: Vec<u8>,
    /// hawser's own namespace, excluded like kube-system.
    pub own_namespace: String,
    /// Extra labels a namespace must carry to be admitted (opt-in mode).
    pub match_namespace_labels: BTreeMap<String, String>,
    /// Add the aws-auth lockout guard's entries to the validating
    /// configuration.
    pub aws_auth_guard: bool,
}

/// Names of the guard's two entries (see the module docs).
pub const GUARD_WEBHOOK: &str = "aws-auth-guard.hawser.io";
pub const GUARD_WEBHOOK_LEGACY: &str = "aws-auth-guard-legacy.hawser.io";

fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

/// The guard's entries: kube-system by name (1.21+), and by the opt-out
/// label where the name label does not exist (1.20).
fn guard_webhooks(opts: &WebhookOptions) -> Vec<ValidatingWebhook> {
    let selectors = [
        (
            GUARD_WEBHOOK,
            vec![requirement(NAMESPACE_NAME_LABEL, "In", &["kube-system"])],
        ),
        (
            GUARD_WEBHOOK_LEGACY,
            vec![
                requirement(NAMESPACE_NAME_LABEL, "DoesNotExist", &[]),
                requirement(ADMISSION_OPT_OUT_LABEL, "In", &[ADMISSION_OPT_OUT_VALUE]),
            ],
        ),
    ];
    selectors
        .into_iter()
        .map(|(name, expressions)| ValidatingWebhook {
            name: name.into(),
            admission_review_versions: vec!["v1".into()],
            client_config: client_config(opts, "/validate-aws-auth"),
            failure_policy: Some("Ignore".into()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(expressions),
                match_labels: None,
            }),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["".into()]),
                api_versions: Some(vec!["v1".into()]),
                resources: Some(vec!["configmaps".into()]),
                operations: Some(vec!["UPDATE".into(), "DELETE".into()]),
                scope: Some("Namespaced".into()),
            }]),
            side_effects: "None".into(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            ..Default::default()
        })
        .collect()
}

fn rule(group: &str, version: &str, resource: &str, scope: &str) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec![version.into()]),
        resources: Some(vec![resource.into()]),
        // hawser never refuses a DELETE and has nothing to mutate on one;
        // asking for it would only add a failure point to every delete.
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        scope: Some(scope.into()),
    }
}

/// The kinds hawser admits, on both /mutate and /validate. Status and
/// other subresources are not matched.
fn rules() -> Vec<RuleWithOperations> {
    vec![
        rule("apps", "v1", "deployments", "Namespaced"),
        rule("", "v1", "services", "Namespaced"),
        rule("", "v1", "namespaces", "Cluster"),
    ]
}

fn client_config(opts: &WebhookOptions, path: &str) -> WebhookClientConfig {
    let ca_bundle = Some(ByteString(opts.ca_bundle.clone()));
    match &opts.endpoint {
        Endpoint::Url(url) => WebhookClientConfig {
            url: Some(format!("{}{path}", url.trim_end_matches('/'))),
            ca_bundle,
            service: None,
        },
        Endpoint::Service { name, namespace } => WebhookClientConfig {
            url: None,
            ca_bundle,
            service: Some(ServiceReference {
                name: name.clone(),
                namespace: namespace.clone(),
                path: Some(path.into()),
                port: Some(443),
            }),
        },
    }
}

/// Excludes kube-system and hawser's own namespace by name (1.21+), and any
/// namespace labelled `hawser.io/admission=disabled` (all versions).
pub fn namespace_selector(opts: &WebhookOptions) -> LabelSelector {
    let mut excluded = vec!["kube-system".to_string()];
    if opts.own_namespace != "kube-system" {
        excluded.push(opts.own_namespace.clone());
    }
    LabelSelector {
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.into(),
                operator: "NotIn".into(),
                values: Some(excluded),
            },
            LabelSelectorRequirement {
                key: ADMISSION_OPT_OUT_LABEL.into(),
                operator: "NotIn".into(),
                values: Some(vec![ADMISSION_OPT_OUT_VALUE.into()]),
            },
        ]),
        match_labels: (!opts.match_namespace_labels.is_empty())
            .then(|| opts.match_namespace_labels.clone()),
    }
}

pub fn mutating(opts: &WebhookOptions) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(opts.name.clone()),
            ..Default::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "mutate.hawser.io".into(),
            admission_review_versions: vec!["v1".into()],
            client_config: client_config(opts, "/mutate"),
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(namespace_selector(opts)),
            // Another webhook may add a container after us; run again then.
            reinvocation_policy: Some("IfNeeded".into()),
            rules: Some(rules()),
            side_effects: "None".into(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            ..Default::default()
        }]),
    }
}

pub fn validating(opts: &WebhookOptions) -> ValidatingWebhookConfiguration {
    let mut webhooks = vec![ValidatingWebhook {
        name: "validate.hawser.io".into(),
        admission_review_versions: vec!["v1".into()],
        client_config: client_config(opts, "/validate"),
        failure_policy: Some("Fail".into()),
        match_policy: Some("Equivalent".into()),
        namespace_selector: Some(namespace_selector(opts)),
        rules: Some(rules()),
        side_effects: "None".into(),
        timeout_seconds: Some(TIMEOUT_SECONDS),
        ..Default::default()
    }];
    if opts.aws_auth_guard {
        webhooks.extend(guard_webhooks(opts));
    }
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(opts.name.clone()),
            ..Default::default()
        },
        webhooks: Some(webhooks),
    }
}

impl TryFrom<&WebhookManifestArgs> for WebhookOptions {
    type Error = anyhow::Error;

    fn try_from(args: &WebhookManifestArgs) -> anyhow::Result<Self> {
        let ca_bundle = std::fs::read(&args.ca_bundle_file).with_context(|| {
            format!("reading --ca-bundle-file {}", args.ca_bundle_file.display())
        })?;
        let endpoint = match (&args.url, &args.service) {
            (Some(url), None) => Endpoint::Url(url.clone()),
            (None, Some(service)) => Endpoint::Service {
                name: service.clone(),
                namespace: args.namespace.clone(),
            },
            _ => anyhow::bail!("give exactly one of --url and --service"),
        };
        Ok(Self {
            name: args.name.clone(),
            endpoint,
            ca_bundle,
            own_namespace: args.namespace.clone(),
            match_namespace_labels: args.match_namespace_labels.iter().cloned().collect(),
            aws_auth_guard: args.aws_auth_guard,
        })
    }
}

/// Prints the requested manifests as a YAML stream.
pub fn print(args: &ManifestsArgs) -> anyhow::Result<()> {
    match &args.what {
        ManifestKind::Webhook(w) => {
            let opts = WebhookOptions::try_from(w)?;
            let docs = [
                with_type_meta(&mutating(&opts))?,
                with_type_meta(&validating(&opts))?,
            ];
            for doc in docs {
                println!("---\n{}", serde_yaml_ng::to_string(&doc)?);
            }
            Ok(())
        }
    }
}

/// Serialises a k8s-openapi resource with its apiVersion and kind.
pub fn with_type_meta<K: k8s_openapi::Resource + serde::Serialize>(
    obj: &K,
) -> anyhow::Result<serde_json::Value> {
    let mut value = serde_json::to_value(obj)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::API_VERSION.into());
        map.insert("kind".into(), K::KIND.into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> WebhookOptions {
        WebhookOptions {
            name: "hawser".into(),
            endpoint: Endpoint::Service {
                name: "hawser-webhook".into(),
                namespace: "hawser-system".into(),
            },
            ca_bundle: b"PEM".to_vec(),
            own_namespace: "hawser-system".into(),
            match_namespace_labels: BTreeMap::new(),
            aws_auth_guard: false,
        }
    }

    #[test]
    fn configurations_follow_the_contract() {
        let m = mutating(&opts());
        let hook = &m.webhooks.as_ref().unwrap()[0];
        assert_eq!(hook.side_effects, "None");
        assert_eq!(hook.admission_review_versions, vec!["v1"]);
        assert!(hook.timeout_seconds.unwrap() <= 5);
        assert_eq!(
            hook.client_config.service.as_ref().unwrap().path.as_deref(),
            Some("/mutate")
        );
        let sel = serde_json::to_value(hook.namespace_selector.as_ref().unwrap()).unwrap();
        assert_eq!(
            sel,
            serde_json::json!({"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "hawser-system"]},
                {"key": "hawser.io/admission", "operator": "NotIn", "values": ["disabled"]},
            ]})
        );
        let v = validating(&WebhookOptions {
            endpoint: Endpoint::Url("https://127.0.0.1:8443/".into()),
            match_namespace_labels: [("team".to_string(), "a".to_string())].into(),
            ..opts()
        });
        let hook = &v.webhooks.as_ref().unwrap()[0];
        assert_eq!(
            hook.client_config.url.as_deref(),
            Some("https://127.0.0.1:8443/validate")
        );
        assert_eq!(
            hook.namespace_selector.as_ref().unwrap().match_labels,
            Some([("team".to_string(), "a".to_string())].into())
        );
        assert_eq!(
            v.webhooks.as_ref().unwrap().len(),
            1,
            "no guard unless asked"
        );
    }

    #[test]
    fn the_guard_sees_kube_system_configmaps_on_every_version_and_fails_open() {
        let v = validating(&WebhookOptions {
            aws_auth_guard: true,
            match_namespace_labels: [("team".to_string(), "a".to_string())].into(),
            ..opts()
        });
        let hooks = v.webhooks.unwrap();
        assert_eq!(hooks.len(), 3);
        let selectors: Vec<serde_json::Value> = hooks[1..]
            .iter()
            .map(|h| {
                assert_eq!(h.failure_policy.as_deref(), Some("Ignore"));
                assert_eq!(
                    h.client_config.service.as_ref().unwrap().path.as_deref(),
                    Some("/validate-aws-auth")
                );
                let rule = &h.rules.as_ref().unwrap()[0];
                assert_eq!(rule.resources, Some(vec!["configmaps".to_string()]));
                assert_eq!(
                    rule.operations,
                    Some(vec!["UPDATE".to_string(), "DELETE".to_string()])
                );
                serde_json::to_value(h.namespace_selector.as_ref().unwrap()).unwrap()
            })
            .collect();
        assert_eq!(
            selectors,
            vec![
                serde_json::json!({"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kube-system"]},
                ]}),
                serde_json::json!({"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "DoesNotExist"},
                    {"key": "hawser.io/admission", "operator": "In", "values": ["disabled"]},
                ]}),
            ],
            "no opt-in labels: kube-system never carries them"
        );
    }
}
