//! Side effects in AWS, as apply and cleanup report them, and the
//! Kubernetes Event each becomes. The reasons are listed in docs/vpc-endpoints.md.

use std::fmt;

use kube::runtime::events::EventType;

#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
pub enum Effect {
    SecurityGroupCreated {
        id: String,
    },
    SecurityGroupRulesChanged {
        id: String,
        detail: String,
    },
    SecurityGroupDeleted {
        id: String,
    },
    EndpointCreated {
        id: String,
    },
    /// Found by its tags, not recorded on the Service (e.g. hawser
    /// stopped between creating it and writing the annotations).
    EndpointAdopted {
        id: String,
    },
    EndpointModified {
        id: String,
        detail: String,
    },
    /// The recorded endpoint or group was gone (deleted outside hawser),
    /// and a new one was made.
    DriftRepaired {
        what: &'static str,
        old: String,
        new: String,
    },
    /// Service name or VPC changed: the old endpoint is deleted.
    EndpointReplaced {
        old: String,
    },
    DuplicateEndpointDeleted {
        id: String,
    },
    EndpointDeleted {
        id: String,
    },
    /// `hawser.io/deletion-policy: retain`: kept, ownership tags removed.
    ResourcesRetained {
        ids: Vec<String>,
    },
}

impl Effect {
    /// (type, reason, note) of the Event this effect is reported with;
    /// the reason is the variant's name.
    pub fn event(&self) -> (EventType, &'static str, String) {
        let type_ = match self {
            Effect::DriftRepaired { .. } | Effect::DuplicateEndpointDeleted { .. } => {
                EventType::Warning
            }
            _ => EventType::Normal,
        };
        (type_, self.into(), self.to_string())
    }
}

/// The Event's note.
impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::SecurityGroupCreated { id } => write!(f, "created security group {id}"),
            Effect::SecurityGroupRulesChanged { id, detail } => {
                write!(f, "security group {id}: {detail}")
            }
            Effect::SecurityGroupDeleted { id } => write!(f, "deleted security group {id}"),
            Effect::EndpointCreated { id } => write!(f, "created VPC endpoint {id}"),
            Effect::EndpointAdopted { id } => {
                write!(f, "adopted VPC endpoint {id}, found by its hawser.io tags")
            }
            Effect::EndpointModified { id, detail } => {
                write!(f, "modified VPC endpoint {id}: {detail}")
            }
            Effect::DriftRepaired { what, old, new } => {
                write!(f, "{what} {old} was deleted outside hawser; created {new}")
            }
            Effect::EndpointReplaced { old } => write!(
                f,
                "deleted VPC endpoint {old}: its service name or VPC no longer matches the Service"
            ),
            Effect::DuplicateEndpointDeleted { id } => {
                write!(f, "deleted duplicate VPC endpoint {id}")
            }
            Effect::EndpointDeleted { id } => write!(f, "deleted VPC endpoint {id}"),
            Effect::ResourcesRetained { ids } => {
                let kept = if ids.is_empty() {
                    "nothing (no resources found)".to_owned()
                } else {
                    ids.join(", ")
                };
                write!(
                    f,
                    "hawser.io/deletion-policy is retain: kept {kept}, tagged {} and no longer managed",
                    super::desired::TAG_RELEASED_FROM
                )
            }
        }
    }
}
