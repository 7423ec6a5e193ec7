//! Objects in a namespace whose AWS resources were made in the namespace's
//! account and region: what a change of the Namespace's
//! `aws.hawser.io/region` or `aws.hawser.io/role-arn` would leave behind.
//! The controllers would look for those resources in the new place, not
//! find them, and make new ones; the old ones would run on, unseen and
//! billed.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{api::ListParams, core::PartialObjectMeta, Api, Client, ResourceExt};

use crate::annotations::keys;

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
    pub fn between(old: Option<&Annotations>, new: Option<&Annotations>) -> Self {
        let changed = |key: &str| old.and_then(|a| a.get(key)) != new.and_then(|a| a.get(key));
        Self {
            region: changed(keys::AWS_REGION),
            role: changed(keys::AWS_ROLE_ARN),
        }
    }

    pub fn any(self) -> bool {
        self.region || self.role
    }
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
) -> Result<Vec<String>, String> {
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
        Ok(Ok((s, d))) => Ok(stranded(change, &names(s), &names(d))),
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
    fn a_change_is_read_from_the_two_annotations() {
        let old = ann(&[("aws.hawser.io/region", "eu-west-1")]);
        let same = ScopeChange::between(Some(&old), Some(&old));
        assert!(!same.any());
        let moved = ann(&[("aws.hawser.io/region", "us-east-1")]);
        assert_eq!(
            ScopeChange::between(Some(&old), Some(&moved)),
            ScopeChange {
                region: true,
                role: false
            }
        );
        let role = ann(&[
            ("aws.hawser.io/region", "eu-west-1"),
            ("aws.hawser.io/role-arn", "arn:aws:iam::222222222222:role/t"),
        ]);
        assert_eq!(
            ScopeChange::between(Some(&old), Some(&role)),
            ScopeChange {
                region: false,
                role: true
            }
        );
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
