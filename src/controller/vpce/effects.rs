//! Side effects in AWS, as apply and cleanup report them, and the
//! Kubernetes Event each becomes. The reasons are listed in docs/vpc-endpoints.md.

use kube::runtime::events::EventType;

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// (type, reason, note) of the Event this effect is reported with.
    pub fn event(&self) -> (EventType, &'static str, String) {
        use EventType::{Normal, Warning};
        match self {
            Effect::SecurityGroupCreated { id } => (
                Normal,
                "SecurityGroupCreated",
                format!("created security group {id}"),
            ),
            Effect::SecurityGroupRulesChanged { id, detail } => (
                Normal,
                "SecurityGroupRulesChanged",
                format!("security group {id}: {detail}"),
            ),
            Effect::SecurityGroupDeleted { id } => (
                Normal,
                "SecurityGroupDeleted",
                format!("deleted security group {id}"),
            ),
            Effect::EndpointCreated { id } => (
                Normal,
                "EndpointCreated",
                format!("created VPC endpoint {id}"),
            ),
            Effect::EndpointAdopted { id } => (
                Normal,
                "EndpointAdopted",
                format!("adopted VPC endpoint {id}, found by its hawser.io tags"),
            ),
            Effect::EndpointModified { id, detail } => (
                Normal,
                "EndpointModified",
                format!("modified VPC endpoint {id}: {detail}"),
            ),
            Effect::DriftRepaired { what, old, new } => (
                Warning,
                "DriftRepaired",
                format!("{what} {old} was deleted outside hawser; created {new}"),
            ),
            Effect::EndpointReplaced { old } => (
                Normal,
                "EndpointReplaced",
                format!(
                    "deleted VPC endpoint {old}: its service name or VPC no longer matches the Service"
                ),
            ),
            Effect::DuplicateEndpointDeleted { id } => (
                Warning,
                "DuplicateEndpointDeleted",
                format!("deleted duplicate VPC endpoint {id}"),
            ),
            Effect::EndpointDeleted { id } => (
                Normal,
                "EndpointDeleted",
                format!("deleted VPC endpoint {id}"),
            ),
            Effect::ResourcesRetained { ids } => (
                Normal,
                "ResourcesRetained",
                format!(
                    "hawser.io/deletion-policy is retain: kept {}, tagged {} and no longer managed",
                    if ids.is_empty() {
                        "nothing (no resources found)".to_owned()
                    } else {
                        ids.join(", ")
                    },
                    super::desired::TAG_RELEASED_FROM
                ),
            ),
        }
    }
}
