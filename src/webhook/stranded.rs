//! Objects in a namespace whose AWS resources were made in the namespace's
//! account and region: what a change of the Namespace's
//! `aws.hawser.io/region` or `aws.hawser.io/role-arn` would leave behind.
//! The controllers would look for those resources in the new place, not
//! find them, and make new ones; the old ones would run on, unseen and
//! billed.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{api::ListParams, core::PartialObjectMeta, Api, Client, ResourceExt};

use crate::annotations::{effective_region, keys, parse_role_arn};

type Annotations = BTreeMap<String, String>;

/// What this hawser's controllers manage, and so what can hold resources
/// (and what its RBAC lets it list): Services with `vpce`, Deployments with
/// `stack`, only in `--watch-namespace` when that is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed {
    pub services: bool,
    pub deployments: bool,
    pub only_namespace: Option<String>,
}

impl Managed {
    /// Whether objects in `namespace` can hold resources at all.
    pub fn covers(&self, namespace: &str) -> bool {
        (self.services || self.deployments)
            && self
                .only_namespace
                .as_deref()
                .is_none_or(|n| n == namespace)
    }
}

/// Which of the Namespace's scope annotations an update changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeChange {
    pub region: bool,
    pub role: bool,
}

impl ScopeChange {
    /// Compares where the two versions send AWS calls, not the text: a
    /// region left unset is `default_region` (`--region`, when known), and
    /// a role matters only for its account (resources are found by their
    /// tags within an account and region, whichever role looks). A role
    /// added or removed counts as a change: hawser's own account is not
    /// known here.
    pub fn between(
        old: Option<&Annotations>,
        new: Option<&Annotations>,
        default_region: Option<&str>,
    ) -> Self {
        let region = |a: Option<&Annotations>| {
            let namespace = a.and_then(|a| a.get(keys::AWS_REGION));
            effective_region(None, namespace.map(String::as_str), default_region).map(str::to_owned)
        };
        let account = |a: Option<&Annotations>| {
            a.and_then(|a| a.get(keys::AWS_ROLE_ARN)).map(|v| {
                parse_role_arn(keys::AWS_ROLE_ARN, v)
                    .map(|arn| arn.account_id)
                    // Unparseable: the validating webhook refuses it anyway.
                    .unwrap_or_else(|_| v.clone())
            })
        };
        Self {
            region: region(old) != region(new),
            role: account(old) != account(new),
        }
    }

    pub fn only_region(self) -> Self {
        Self {
            role: false,
            ..self
        }
    }

    pub fn only_role(self) -> Self {
        Self {
            region: false,
            ..self
        }
    }

    pub fn any(self) -> bool {
        self.region || self.role
    }
}

/// What a change strands, per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stranded {
    /// By the region change alone.
    pub region: Vec<String>,
    /// By the role (account) change alone.
    pub role: Vec<String>,
}

/// `Kind/name (resource)` for each object the change would strand. A
/// Service with its own `aws.hawser.io/region` keeps its endpoint's region,
/// so only a role change strands it.
pub fn stranded(
    change: ScopeChange,
    services: &[(String, Annotations)],
    deployments: &[(String, Annotations)],
) -> Vec<String> {
    let mut found = Vec::new();
    for (name, ann) in services {
        let own_region = ann.contains_key(keys::AWS_REGION);
        if let Some(id) = ann.get(keys::VPCE_ENDPOINT_ID) {
            if change.role || (change.region && !own_region) {
                found.push(format!("Service/{name} (endpoint {id})"));
            }
        }
    }
    if change.any() {
        for (name, ann) in deployments {
            if let Some(id) = ann.get(keys::CFN_STACK_ID) {
                found.push(format!("Deployment/{name} (stack {id})"));
            }
        }
    }
    found
}

fn names<K: kube::Resource>(list: Vec<PartialObjectMeta<K>>) -> Vec<(String, Annotations)> {
    list.into_iter()
        .map(|o| (o.name_any(), o.annotations().clone()))
        .collect()
}

/// Lists the namespace's Services and Deployments (metadata only) and
/// returns what `change` would strand. An error is the reason the check
/// could not be made.
pub async fn find(
    client: &Client,
    managed: &Managed,
    namespace: &str,
    change: ScopeChange,
    deadline: Duration,
) -> Result<Stranded, String> {
    let lp = ListParams::default();
    let services = Api::<Service>::namespaced(client.clone(), namespace);
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace);
    let lists = async {
        let mut s = vec![];
        if managed.services {
            s = services.list_metadata(&lp).await?.items;
        }
        let mut d = vec![];
        if managed.deployments {
            d = deployments.list_metadata(&lp).await?.items;
        }
        Ok::<_, kube::Error>((s, d))
    };
    match tokio::time::timeout(deadline, lists).await {
        Ok(Ok((s, d))) => {
            let (s, d) = (names(s), names(d));
            Ok(Stranded {
                region: stranded(change.only_region(), &s, &d),
                role: stranded(change.only_role(), &s, &d),
            })
        }
        Ok(Err(e)) => Err(format!("listing its Services and Deployments failed: {e}")),
        Err(_) => Err(format!(
            "listing its Services and Deployments took longer than {deadline:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_change_is_where_calls_go_not_the_text() {
        let between = |a: &Annotations, b: &Annotations| {
            ScopeChange::between(Some(a), Some(b), Some("eu-west-1"))
        };
        let old = ann(&[("aws.hawser.io/region", "eu-west-1")]);
        assert!(!between(&old, &old).any());
        assert!(!between(&ann(&[]), &old).any(), "unset is --region");
        let moved = ann(&[("aws.hawser.io/region", "us-east-1")]);
        assert_eq!(
            between(&old, &moved),
            ScopeChange {
                region: true,
                role: false
            }
        );
        let role = |arn: &str| {
            ann(&[
                ("aws.hawser.io/region", "eu-west-1"),
                ("aws.hawser.io/role-arn", arn),
            ])
        };
        let (t, u) = (
            role("arn:aws:iam::222222222222:role/t"),
            role("arn:aws:iam::222222222222:role/u"),
        );
        assert_eq!(
            between(&old, &t),
            ScopeChange {
                region: false,
                role: true
            },
            "hawser's own account is not known"
        );
        assert!(!between(&t, &u).any(), "another role, same account");
        assert!(between(&t, &role("arn:aws:iam::333333333333:role/t")).role);
        // Without --region, unset is only unset.
        assert!(ScopeChange::between(Some(&ann(&[])), Some(&old), None).region);
    }

    #[test]
    fn endpoints_and_stacks_are_stranded_unless_a_service_keeps_its_own_region() {
        let services = vec![
            (
                "web".to_owned(),
                ann(&[("vpce.hawser.io/endpoint-id", "vpce-1")]),
            ),
            (
                "pinned".to_owned(),
                ann(&[
                    ("vpce.hawser.io/endpoint-id", "vpce-2"),
                    ("aws.hawser.io/region", "eu-west-1"),
                ]),
            ),
            ("plain".to_owned(), ann(&[])),
        ];
        let deployments = vec![
            (
                "api".to_owned(),
                ann(&[("cfn.hawser.io/stack-id", "arn:s")]),
            ),
            ("idle".to_owned(), ann(&[])),
        ];
        let region = ScopeChange {
            region: true,
            role: false,
        };
        assert_eq!(
            stranded(region, &services, &deployments),
            [
                "Service/web (endpoint vpce-1)",
                "Deployment/api (stack arn:s)"
            ]
        );
        let role = ScopeChange {
            region: false,
            role: true,
        };
        assert_eq!(
            stranded(role, &services, &deployments),
            [
                "Service/web (endpoint vpce-1)",
                "Service/pinned (endpoint vpce-2)",
                "Deployment/api (stack arn:s)"
            ]
        );
        assert!(stranded(ScopeChange::default(), &services, &deployments).is_empty());
    }

    #[test]
    fn only_namespaces_the_controllers_manage_are_checked() {
        let all = Managed {
            services: true,
            deployments: false,
            only_namespace: None,
        };
        assert!(all.covers("a"));
        let one = Managed {
            only_namespace: Some("a".into()),
            ..all.clone()
        };
        assert!(one.covers("a") && !one.covers("b"));
        assert!(!Managed::default().covers("a"), "namespace controller only");
    }
}
