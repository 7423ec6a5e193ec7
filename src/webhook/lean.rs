//! A Deployment as the admission rules read it, decoded without the rest.
//!
//! k8s-openapi's `Deployment` decodes every field of the object and
//! allocates each string, map and list in it: for a 12 KB Deployment that
//! is more CPU than the whole TLS and HTTP exchange of a request. The rules
//! ([`super::deployment`], [`super::hardening`], [`super::workload`]) read
//! only the fields below; everything else (images, env values, probes,
//! volumes, resources, labels, managed fields) is skipped by the parser
//! without being stored. The result is a k8s-openapi `Deployment` with
//! exactly those fields set and the rest left at their defaults, so the
//! rules' code is the same.
//!
//! Read: `metadata.name`, `metadata.namespace`, `metadata.annotations`;
//! `spec.template.metadata.annotations`; the pod's `securityContext`; of
//! each container and init container its `name`, `securityContext`, the
//! `name` and `valueFrom.secretKeyRef` of each `env` entry, and `envFrom`.
//! A field the rules read must be added here, or they see it unset: this
//! module's tests compare the rules' decisions on every fixture and
//! benchmark Deployment with those on the full decoding.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::{Deployment, DeploymentSpec},
    core::v1::{
        Container, EnvFromSource, EnvVar, EnvVarSource, PodSecurityContext, PodSpec,
        PodTemplateSpec, SecretKeySelector, SecurityContext,
    },
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// Decodes as the fields above, into a k8s-openapi `Deployment`.
#[derive(Deserialize)]
#[serde(from = "Object")]
pub struct LeanDeployment(Deployment);

impl From<LeanDeployment> for Deployment {
    fn from(lean: LeanDeployment) -> Self {
        lean.0
    }
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

impl From<Meta> for ObjectMeta {
    fn from(m: Meta) -> Self {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            annotations: m.annotations,
            ..ObjectMeta::default()
        }
    }
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    template: Option<Template>,
}

#[derive(Deserialize)]
struct Template {
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default)]
    spec: Option<Pod>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pod {
    #[serde(default)]
    security_context: Option<PodSecurityContext>,
    #[serde(default)]
    containers: Option<Vec<LeanContainer>>,
    #[serde(default)]
    init_containers: Option<Vec<LeanContainer>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanContainer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    security_context: Option<SecurityContext>,
    #[serde(default)]
    env: Option<Vec<Env>>,
    #[serde(default)]
    env_from: Option<Vec<EnvFromSource>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Env {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value_from: Option<ValueFrom>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValueFrom {
    #[serde(default)]
    secret_key_ref: Option<SecretKeySelector>,
}

impl From<LeanContainer> for Container {
    fn from(c: LeanContainer) -> Self {
        let env = c.env.map(|list| {
            list.into_iter()
                .map(|e| EnvVar {
                    name: e.name,
                    value_from: e.value_from.map(|v| EnvVarSource {
                        secret_key_ref: v.secret_key_ref,
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                })
                .collect()
        });
        Container {
            name: c.name,
            security_context: c.security_context,
            env,
            env_from: c.env_from,
            ..Container::default()
        }
    }
}

fn containers(list: Option<Vec<LeanContainer>>) -> Option<Vec<Container>> {
    list.map(|l| l.into_iter().map(Container::from).collect())
}

impl From<Object> for LeanDeployment {
    fn from(o: Object) -> Self {
        let spec = o.spec.map(|s| {
            let template = s.template.map(|t| PodTemplateSpec {
                metadata: t.metadata.map(ObjectMeta::from),
                spec: t.spec.map(|p| PodSpec {
                    security_context: p.security_context,
                    containers: containers(p.containers).unwrap_or_default(),
                    init_containers: containers(p.init_containers),
                    ..PodSpec::default()
                }),
            });
            DeploymentSpec {
                template: template.unwrap_or_default(),
                ..DeploymentSpec::default()
            }
        });
        LeanDeployment(Deployment {
            metadata: o.metadata.map(ObjectMeta::from).unwrap_or_default(),
            spec,
            ..Deployment::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::annotations::keys;
    use crate::namespaces::NamespaceInfo;
    use crate::webhook::{contract::Decision, deployment, Webhook};

    /// The objects of every Deployment review the project has as a
    /// fixture or benchmark body.
    fn reviewed() -> Vec<Value> {
        let reviews = [
            include_str!("../../tests/fixtures/deployment-create-dry-run.json"),
            include_str!("../../tests/fixtures/deployment-create-kube-system.json"),
            include_str!("../../tests/fixtures/deployment-create-privileged.json"),
            include_str!("../../tests/fixtures/deployment-create-restricted.json"),
            include_str!("../../tests/fixtures/deployment-update-privileged.json"),
            include_str!("../../bench/bodies/deployment.json"),
        ];
        let mut out = Vec::new();
        for text in reviews {
            let review: Value = serde_json::from_str(text).unwrap();
            for field in ["object", "oldObject"] {
                let o = &review["request"][field];
                if o.is_object() {
                    out.push(o.clone());
                }
            }
        }
        out
    }

    /// A Deployment that touches every field the rules read: routing
    /// hosts, key and output injection (and their removal), init
    /// containers, pod and container security contexts.
    fn everything(inject: bool) -> Value {
        let mut ann = json!({
            keys::ROUTING_PUBLIC_HOSTS: "Api.Example.com",
            keys::CFN_TEMPLATE_CONFIGMAP: "web-template/template.yaml",
        });
        if inject {
            ann[keys::ROUTING_INJECT_KEYS] = json!("true");
            ann[keys::CFN_INJECT_OUTPUTS] = json!("true");
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team-a", "annotations": ann,
                "labels": {"app": "web"}, "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "annotations": {keys::ROUTING_PRIVATE_HOSTS: "old.example.com"}},
                    "spec": {
                        "securityContext": {"runAsNonRoot": true},
                        "initContainers": [{"name": "init", "image": "busybox",
                            "securityContext": {"privileged": true}}],
                        "containers": [
                            {"name": "app", "image": "nginx", "env": [
                                {"name": "A", "value": "1"},
                                {"name": "ROUTING_PUBLIC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "routing", "key": "public-api-key"}}}
                            ], "envFrom": [{"configMapRef": {"name": "web-stack-outputs"}}],
                             "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
                            {"name": "sidecar", "image": "envoy", "ports": [{"containerPort": 8080}]}
                        ]
                    }
                }
            }
        })
    }

    fn full(o: &Value) -> Deployment {
        serde_json::from_value(o.clone()).unwrap()
    }

    fn lean(o: &Value) -> Deployment {
        serde_json::from_value::<LeanDeployment>(o.clone())
            .unwrap()
            .into()
    }

    fn decide(
        webhook: Webhook,
        new: &Deployment,
        old: Option<&Deployment>,
        ns: &NamespaceInfo,
        flag: bool,
    ) -> Decision {
        deployment::decide(
            webhook,
            &deployment::Input {
                namespace: "team-a",
                name: "web",
                username: "alice",
                dry_run: false,
                new,
                old,
                ns: Some(ns),
                allow_privileged_containers: flag,
                controller_usernames: &[],
            },
        )
    }

    #[test]
    fn the_rules_decide_the_same_on_the_lean_and_the_full_decoding() {
        let mut objects = reviewed();
        objects.extend([everything(true), everything(false)]);
        let namespaces: Vec<NamespaceInfo> = [
            vec![],
            vec![(keys::SECURITY_PROFILE, "restricted")],
            vec![(keys::SECURITY_ALLOW_PRIVILEGED, "true")],
        ]
        .into_iter()
        .map(|ann| NamespaceInfo {
            annotations: ann
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..NamespaceInfo::default()
        })
        .collect();
        let mut compared = 0;
        for new in &objects {
            for old in [None].into_iter().chain(objects.iter().map(Some)) {
                for ns in &namespaces {
                    for flag in [false, true] {
                        for webhook in [Webhook::Mutate, Webhook::Validate] {
                            let (full_old, lean_old) = (old.map(full), old.map(lean));
                            let want = decide(webhook, &full(new), full_old.as_ref(), ns, flag);
                            let got = decide(webhook, &lean(new), lean_old.as_ref(), ns, flag);
                            assert_eq!(got, want, "{webhook:?} of {new}\nold {old:?}");
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert!(compared > 500, "{compared}");
        // And the cases differ: the comparison is not of empty decisions.
        let ns = &namespaces[1];
        let paths = |d: &Decision| -> Vec<String> {
            d.patch.iter().map(|op| op.path().to_string()).collect()
        };
        let d = decide(Webhook::Mutate, &lean(&everything(true)), None, ns, false);
        for wanted in [
            "/spec/template/spec/containers/1/envFrom",
            "/spec/template/spec/containers/1/env",
            "/spec/template/spec/containers/0/env/-",
            "/spec/template/metadata/annotations/routing.hawser.io~1public-hosts",
        ] {
            assert!(
                paths(&d).iter().any(|p| p == wanted),
                "{wanted} in {:?}",
                paths(&d)
            );
        }
        assert!(!d.warnings.is_empty(), "{d:?}");
        let old = lean(&everything(true));
        let d = decide(
            Webhook::Mutate,
            &lean(&everything(false)),
            Some(&old),
            ns,
            false,
        );
        for wanted in [
            "/spec/template/spec/containers/0/envFrom/0",
            "/spec/template/spec/containers/0/env/1",
        ] {
            assert!(
                paths(&d).iter().any(|p| p == wanted),
                "removal {wanted} in {:?}",
                paths(&d)
            );
        }
        let d = decide(
            Webhook::Validate,
            &lean(&everything(true)),
            None,
            &namespaces[0],
            false,
        );
        assert!(!d.denials.is_empty(), "{d:?}");
    }

    #[test]
    fn only_the_fields_the_rules_read_are_kept() {
        let d = lean(&everything(true));
        assert_eq!(d.metadata.labels, None);
        assert_eq!(d.metadata.managed_fields, None);
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, None);
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.containers[0].image, None);
        assert_eq!(pod.containers[0].env.as_ref().unwrap()[0].value, None);
        assert_eq!(
            pod.containers[0].env.as_ref().unwrap()[1].name,
            "ROUTING_PUBLIC_API_KEY"
        );
        assert!(pod.containers[0].env.as_ref().unwrap()[1]
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .is_some());
        assert_eq!(pod.containers[0].env_from.as_ref().unwrap().len(), 1);
        assert_eq!(pod.containers[1].ports, None);
        assert_eq!(
            pod.init_containers.unwrap()[0]
                .security_context
                .as_ref()
                .unwrap()
                .privileged,
            Some(true)
        );
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    }
}
