//! The environment's routing keys: Secret `routing` with `public-api-key`
//! and `private-api-key`, each 32 bytes from the OS's secure random
//! source, base64.
//!
//! Created once and never overwritten. The `env.hawser.io/rotate-keys`
//! value a rotation answered is recorded *on the Secret*, in the same
//! write as the new keys, so a crash between rotating and recording cannot
//! rotate twice; the Namespace's `env.hawser.io/rotated-keys` mirrors it.
//! A `routing` Secret hawser did not create is left alone. Turning
//! `env.hawser.io/routing-secret` off leaves the Secret in place: it may
//! be mounted by running pods, and deleting keys is not undoable.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::{api::core::v1::Secret, ByteString};
use kube::{
    api::{Patch, PatchParams, PostParams},
    core::ObjectMeta,
    Api,
};

use super::{error::Error, MANAGED_BY, MANAGED_BY_VALUE};
use crate::annotations::keys::ENV_ROTATED_KEYS;
use crate::controller::{timeout, FIELD_MANAGER};

pub const SECRET_NAME: &str = "routing";
pub const PUBLIC_KEY: &str = "public-api-key";
pub const PRIVATE_KEY: &str = "private-api-key";
const KEY_BYTES: usize = 32;

/// What the Secret needs, decided from what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// None yet: create it, recording the current rotate-keys value (a
    /// new Secret's keys are already fresh).
    Create { rotated: Option<String> },
    /// A rotate-keys value the Secret has not answered yet.
    Rotate { to: String },
    /// Up to date; `rotated` is what it records.
    Keep { rotated: Option<String> },
    /// Not hawser's.
    Foreign,
}

/// A Secret's labels and annotations.
type Meta<'a> = (&'a BTreeMap<String, String>, &'a BTreeMap<String, String>);

/// The pure decision. `existing`: the Secret's labels and annotations.
pub fn plan(existing: Option<Meta<'_>>, rotate_keys: Option<&str>) -> Plan {
    let Some((labels, annotations)) = existing else {
        return Plan::Create {
            rotated: rotate_keys.map(str::to_owned),
        };
    };
    if labels.get(MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
        return Plan::Foreign;
    }
    let recorded = annotations.get(ENV_ROTATED_KEYS).cloned();
    match rotate_keys {
        Some(want) if recorded.as_deref() != Some(want) => Plan::Rotate {
            to: want.to_owned(),
        },
        _ => Plan::Keep { rotated: recorded },
    }
}

/// 32 bytes from the OS's secure random source, base64 (44 characters).
pub fn new_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn new_keys() -> Result<BTreeMap<String, ByteString>, Error> {
    let mut data = BTreeMap::new();
    for name in [PUBLIC_KEY, PRIVATE_KEY] {
        let key = new_key().map_err(|e| Error::Random(e.to_string()))?;
        data.insert(name.to_owned(), ByteString(key.into_bytes()));
    }
    Ok(data)
}

/// What was done, for the Event and the Namespace's output annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Created { rotated: Option<String> },
    Rotated { to: String },
    Kept { rotated: Option<String> },
    Foreign,
}

/// Brings Secret `routing` in `namespace` in line with the plan.
pub async fn ensure(
    secrets: &Api<Secret>,
    namespace: &str,
    rotate_keys: Option<&str>,
) -> Result<Done, Error> {
    let existing = timeout::api("get Secret routing", secrets.get_opt(SECRET_NAME)).await??;
    let empty = BTreeMap::new();
    let meta = existing.as_ref().map(|s| {
        (
            s.metadata.labels.as_ref().unwrap_or(&empty),
            s.metadata.annotations.as_ref().unwrap_or(&empty),
        )
    });
    match plan(meta, rotate_keys) {
        Plan::Foreign => Ok(Done::Foreign),
        Plan::Keep { rotated } => Ok(Done::Kept { rotated }),
        Plan::Create { rotated } => {
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(SECRET_NAME.into()),
                    namespace: Some(namespace.into()),
                    labels: Some([(MANAGED_BY.into(), MANAGED_BY_VALUE.into())].into()),
                    annotations: rotated
                        .as_ref()
                        .map(|r| [(ENV_ROTATED_KEYS.to_owned(), r.clone())].into()),
                    ..Default::default()
                },
                type_: Some("Opaque".into()),
                data: Some(new_keys()?),
                ..Default::default()
            };
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            match timeout::api("create Secret routing", secrets.create(&params, &secret)).await? {
                Ok(_) => Ok(Done::Created { rotated }),
                // Created between our read and our write (a previous pass
                // whose answer was lost): never overwrite; look again next pass.
                Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Requeue(
                    "Secret routing appeared while hawser was creating it".into(),
                )),
                Err(e) => Err(e.into()),
            }
        }
        Plan::Rotate { to } => {
            let version = existing.and_then(|s| s.metadata.resource_version);
            // Pinned to the version read: a concurrent change is a 409 and
            // the next pass decides again, so one value rotates once.
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": version,
                    "annotations": { ENV_ROTATED_KEYS: to },
                },
                "data": new_keys()?,
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            timeout::api(
                "rotate Secret routing",
                secrets.patch(SECRET_NAME, &params, &Patch::Merge(&patch)),
            )
            .await??;
            Ok(Done::Rotated { to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn created_once_rotated_once_per_value_never_taken_over() {
        assert_eq!(plan(None, None), Plan::Create { rotated: None });
        assert_eq!(
            plan(None, Some("2024-01")),
            Plan::Create {
                rotated: Some("2024-01".into())
            },
            "a new Secret answers the current value without a second rotation"
        );
        let ours = map(&[(MANAGED_BY, MANAGED_BY_VALUE)]);
        let none = map(&[]);
        let answered = map(&[(ENV_ROTATED_KEYS, "2024-01")]);
        assert_eq!(
            plan(Some((&ours, &none)), None),
            Plan::Keep { rotated: None }
        );
        assert_eq!(
            plan(Some((&ours, &none)), Some("2024-01")),
            Plan::Rotate {
                to: "2024-01".into()
            }
        );
        assert_eq!(
            plan(Some((&ours, &answered)), Some("2024-01")),
            Plan::Keep {
                rotated: Some("2024-01".into())
            }
        );
        assert_eq!(
            plan(Some((&ours, &answered)), Some("2024-02")),
            Plan::Rotate {
                to: "2024-02".into()
            }
        );
        assert_eq!(
            plan(Some((&ours, &answered)), None),
            Plan::Keep {
                rotated: Some("2024-01".into())
            },
            "removing rotate-keys rotates nothing"
        );
        let theirs = map(&[(MANAGED_BY, "helm")]);
        assert_eq!(plan(Some((&theirs, &none)), Some("x")), Plan::Foreign);
        assert_eq!(plan(Some((&none, &none)), None), Plan::Foreign);
    }

    #[test]
    fn keys_are_32_random_bytes_in_base64() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert_eq!(a.len(), 44);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .unwrap();
        assert_eq!(bytes.len(), 32);
        assert_ne!(a, b);
    }
}
