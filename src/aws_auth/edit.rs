//! The edit itself: apply a batch of namespaces' wishes to `mapRoles` and
//! the ownership record, touching only entries hawser owns.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::items::{render_item, Item, MapRolesText, SplitError};
use super::{role_key, MapRole, Ownership, OwnershipError};

/// What one namespace wants in `aws-auth`: its one entry, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub namespace: String,
    pub desired: Option<MapRole>,
}

/// What happened to one namespace's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Unchanged,
    Added,
    Updated,
    Removed,
}

/// Why one namespace's change was not made; the others in the batch go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "aws-auth already maps role {arn} in an entry hawser did not create; hawser never \
         changes or takes over such entries (remove that entry, or map another role)"
    )]
    Foreign { arn: String },
    #[error("role {arn} is already mapped in aws-auth for namespace {owner:?}; a role maps to one namespace")]
    ClaimedBy { arn: String, owner: String },
    #[error("aws-auth holds {count} entries for role {arn}; hawser will not guess which one is its own (remove the duplicates)")]
    Ambiguous { arn: String, count: usize },
}

/// Why nothing in the batch could be done: the ConfigMap itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    MapRoles(#[from] SplitError),
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
    #[error("hawser's edit of mapRoles did not read back as intended ({0}); nothing was written")]
    SelfCheck(String),
}

/// The new contents, and each namespace's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    pub map_roles: String,
    pub ownership: Ownership,
    pub results: BTreeMap<String, Result<Effect, Refusal>>,
}

impl Edited {
    /// Whether anything needs writing.
    pub fn changed(&self, old_map_roles: &str, old_ownership: &Ownership) -> bool {
        self.map_roles != old_map_roles || &self.ownership != old_ownership
    }
}

/// Applies `changes` (one per namespace; a later one for the same
/// namespace wins) to the current `mapRoles` text and ownership record.
pub fn edit(
    map_roles: &str,
    ownership: &Ownership,
    changes: &[Change],
) -> Result<Edited, DocumentError> {
    let mut doc = MapRolesText::split(map_roles)?;
    let mut owned = ownership.clone();
    let mut results = BTreeMap::new();
    let mut latest: BTreeMap<&str, &Change> = BTreeMap::new();
    for c in changes {
        latest.insert(&c.namespace, c);
    }
    for (namespace, change) in latest {
        let result = apply_one(&mut doc, &mut owned, namespace, change.desired.as_ref());
        results.insert(namespace.to_owned(), result);
    }
    let text = doc.render();
    self_check(&text, &doc)?;
    Ok(Edited {
        map_roles: text,
        ownership: owned,
        results,
    })
}

fn positions(doc: &MapRolesText, key: &str) -> Vec<usize> {
    doc.items
        .iter()
        .enumerate()
        .filter(|(_, item)| item_role(&item.value).is_some_and(|arn| role_key(arn) == key))
        .map(|(i, _)| i)
        .collect()
}

fn item_role(value: &Value) -> Option<&str> {
    value.get("rolearn").and_then(Value::as_str)
}

fn apply_one(
    doc: &mut MapRolesText,
    owned: &mut Ownership,
    namespace: &str,
    desired: Option<&MapRole>,
) -> Result<Effect, Refusal> {
    let wanted = desired.map(|d| role_key(&d.rolearn));
    // Check everything before changing anything, so a refusal leaves this
    // namespace's entries exactly as they were.
    if let (Some(d), Some(key)) = (desired, wanted.as_deref()) {
        if let Some(owner) = owned.owner_of(key).filter(|o| *o != namespace) {
            return Err(Refusal::ClaimedBy {
                arn: d.rolearn.clone(),
                owner: owner.to_owned(),
            });
        }
        let found = positions(doc, key);
        if owned.owner_of(key).is_none() && !found.is_empty() {
            return Err(Refusal::Foreign {
                arn: d.rolearn.clone(),
            });
        }
        if found.len() > 1 {
            return Err(Refusal::Ambiguous {
                arn: d.rolearn.clone(),
                count: found.len(),
            });
        }
    }
    let stale: Vec<String> = owned
        .roles_of(namespace)
        .filter(|arn| Some(role_key(arn)) != wanted)
        .collect();
    for arn in &stale {
        if positions(doc, &role_key(arn)).len() > 1 {
            return Err(Refusal::Ambiguous {
                arn: arn.clone(),
                count: positions(doc, &role_key(arn)).len(),
            });
        }
    }

    let mut effect = Effect::Unchanged;
    for arn in stale {
        if let Some(&i) = positions(doc, &role_key(&arn)).first() {
            let removed = doc.items.remove(i);
            let kept = removed.leading_comments();
            if !kept.is_empty() {
                // Someone else's comment lines go to what preceded the item.
                match i.checked_sub(1) {
                    Some(prev) => doc.items[prev].text.push_str(kept),
                    None => doc.preamble.push_str(kept),
                }
            }
            effect = Effect::Removed;
        }
        owned.remove(&arn);
    }
    let Some(d) = desired else {
        return Ok(effect);
    };
    let key = role_key(&d.rolearn);
    let value = serde_yaml_ng::to_value(d).expect("a MapRole serialises");
    let item = Item {
        text: render_item(d, doc.indent),
        value,
    };
    let effect = match positions(doc, &key).first() {
        Some(&i) if doc.items[i].value == item.value => match effect {
            Effect::Removed => Effect::Updated,
            e => e,
        },
        Some(&i) => {
            let leading = doc.items[i].leading_comments().to_owned();
            doc.items[i] = Item {
                text: leading + &item.text,
                ..item
            };
            Effect::Updated
        }
        None => {
            // A list without a final newline gets one before the new item
            // (and keeps it if the item goes again: the one byte hawser
            // cannot give back).
            match doc.items.last_mut() {
                Some(last) if !last.text.ends_with('\n') => last.text.push('\n'),
                None if !doc.preamble.is_empty() && !doc.preamble.ends_with('\n') => {
                    doc.preamble.push('\n')
                }
                _ => {}
            }
            doc.items.push(item);
            match effect {
                Effect::Removed => Effect::Updated,
                _ => Effect::Added,
            }
        }
    };
    owned.insert(&d.rolearn, namespace);
    Ok(effect)
}

/// The rendered text must parse to exactly the items hawser meant.
fn self_check(text: &str, doc: &MapRolesText) -> Result<(), DocumentError> {
    let parsed: Value =
        serde_yaml_ng::from_str(text).map_err(|e| DocumentError::SelfCheck(e.to_string()))?;
    let expected: Vec<Value> = doc.items.iter().map(|i| i.value.clone()).collect();
    let got = match parsed {
        Value::Null => Vec::new(),
        Value::Sequence(s) => s,
        _ => return Err(DocumentError::SelfCheck("not a list".into())),
    };
    if got != expected {
        return Err(DocumentError::SelfCheck(format!(
            "{} entries read back, {} meant",
            got.len(),
            expected.len()
        )));
    }
    Ok(())
}
