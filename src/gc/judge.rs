//! Whether a resource tagged for this cluster is garbage: what its tags
//! say against what the cluster holds. Pure; [`super::collect`] gathers
//! the inputs, [`super::sweep`] acts on the verdicts.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::annotations::keys::{TAG_OWNER, TAG_UID};
use crate::aws::{Scope, Tags};
use crate::controller::stack::released::PolicyMark;
use crate::controller::vpce::desired::TAG_RELEASED_FROM;

/// What hawser makes in AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    VpcEndpoint,
    SecurityGroup,
    Stack,
}

impl Resource {
    /// The `resource` label of `hawser_gc_deleted_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::VpcEndpoint => "vpc-endpoint",
            Resource::SecurityGroup => "security-group",
            Resource::Stack => "stack",
        }
    }
}

/// One resource tagged `hawser.io/cluster=<this cluster>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub resource: Resource,
    /// Endpoint and group id; a stack's ARN.
    pub id: String,
    /// A stack's or group's name.
    pub name: Option<String>,
    /// The account (role) and region it was found in.
    pub scope: Scope,
    pub tags: Tags,
    pub created: Option<SystemTime>,
}

impl Found {
    pub fn owner(&self) -> Option<&str> {
        self.tags.get(TAG_OWNER).map(String::as_str)
    }

    pub fn uid(&self) -> Option<&str> {
        self.tags.get(TAG_UID).map(String::as_str)
    }
}

/// An object that can own resources, as the cluster shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub uid: String,
    /// It carries the annotation that asks for the resource, or the
    /// controller's finalizer (its cleanup has not finished).
    pub wants: bool,
    /// Where its resources belong now; `None` when its annotations do not
    /// say clearly (an invalid role or region): nothing is judged moved.
    pub scope: Option<Scope>,
    /// The ids its output annotations record (endpoint, group, stack
    /// ARN): those are in use wherever they are found.
    pub recorded: std::collections::BTreeSet<String>,
    /// `hawser.io/plan-only`: its controller does nothing, so nothing of
    /// it is garbage (a region edited to preview must not cost the live
    /// endpoint).
    pub plan_only: bool,
}

/// Owners by their `hawser.io/owner` reference (`Service/<ns>/<name>`,
/// `Deployment/<ns>/<name>`, `Namespace//<name>`), per kind of resource
/// they own: a Deployment never owns an endpoint.
pub type Owners = BTreeMap<String, Owner>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Garbage: deleted unless `--dry-run`.
    Orphan(Why),
    /// Left alone.
    Keep(Keep),
}

/// Why a resource is garbage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// No object of that kind, namespace and name.
    OwnerGone,
    /// An object of that name with another uid: re-created since.
    OwnerReplaced,
    /// The owner no longer asks for it and its cleanup has finished.
    NoLongerAsked,
    /// The owner's resources now belong in another account or region.
    Moved { now: String },
}

/// Why a resource is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Its owner exists and wants it here.
    InUse,
    /// Released by `hawser.io/deletion-policy: retain`.
    Released,
    /// No owner or uid tag: not something hawser manages.
    NotOwned,
    /// A stack with a policy hawser did not write.
    PolicySetOutsideHawser,
    /// Garbage, but younger than `--older-than`.
    TooYoung { age_seconds: u64 },
    /// Its owner's account or region cannot be worked out.
    ScopeUnknown,
    /// Its owner is in a namespace this run does not look after
    /// (`--namespace`, `--watch-namespace`).
    OtherNamespace,
}

impl Verdict {
    pub fn is_garbage(&self) -> bool {
        matches!(self, Verdict::Orphan(_))
    }

    /// The reason as a stable word, for `--output json`.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Orphan(Why::OwnerGone) => "owner-gone",
            Verdict::Orphan(Why::OwnerReplaced) => "owner-replaced",
            Verdict::Orphan(Why::NoLongerAsked) => "no-longer-asked",
            Verdict::Orphan(Why::Moved { .. }) => "moved",
            Verdict::Keep(Keep::InUse) => "in-use",
            Verdict::Keep(Keep::Released) => "released",
            Verdict::Keep(Keep::NotOwned) => "not-owned",
            Verdict::Keep(Keep::PolicySetOutsideHawser) => "policy-set-outside-hawser",
            Verdict::Keep(Keep::TooYoung { .. }) => "too-young",
            Verdict::Keep(Keep::ScopeUnknown) => "scope-unknown",
            Verdict::Keep(Keep::OtherNamespace) => "other-namespace",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Orphan(why) => why.fmt(f),
            Verdict::Keep(keep) => keep.fmt(f),
        }
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::OwnerGone => write!(f, "its owner no longer exists"),
            Why::OwnerReplaced => write!(f, "its owner was deleted and re-created (another uid)"),
            Why::NoLongerAsked => write!(
                f,
                "its owner no longer carries the annotation and its cleanup has finished"
            ),
            Why::Moved { now } => write!(f, "its owner's resources now belong in {now}"),
        }
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keep::InUse => write!(f, "in use"),
            Keep::Released => write!(f, "released by hawser.io/deletion-policy: retain"),
            Keep::NotOwned => write!(f, "no hawser.io/owner and hawser.io/uid tags"),
            Keep::PolicySetOutsideHawser => {
                write!(f, "the stack has a stack policy hawser did not set")
            }
            Keep::TooYoung { age_seconds } => {
                write!(f, "garbage, but only {age_seconds}s old (--older-than)")
            }
            Keep::ScopeUnknown => write!(
                f,
                "its owner's aws.hawser.io/role-arn or region does not parse"
            ),
            Keep::OtherNamespace => write!(f, "its owner is in a namespace not looked after"),
        }
    }
}

/// `region` or `region as role`: where a resource lives, for messages.
pub fn describe_scope(scope: &Scope) -> String {
    match &scope.role_arn {
        Some(role) => format!("{} as {role}", scope.region),
        None => scope.region.clone(),
    }
}

/// Same account and region (the session name does not matter).
fn same_place(a: &Scope, b: &Scope) -> bool {
    a.region == b.region && a.role_arn == b.role_arn
}

/// What a run judges by besides the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub now: SystemTime,
    /// Garbage younger than this is kept.
    pub older_than: Duration,
    /// Only resources whose owner is in this namespace are judged.
    pub namespace: Option<&'a str>,
}

/// The namespace in an owner reference: `Kind/<ns>/<name>`, or a
/// Namespace's own name (`Namespace//<name>`).
pub fn owner_namespace(reference: &str) -> Option<&str> {
    let mut parts = reference.splitn(3, '/');
    match (parts.next()?, parts.next()?, parts.next()?) {
        ("Namespace", "", name) => Some(name),
        (_, ns, _) => Some(ns),
    }
}

/// Whether `reference` is an owner reference hawser writes for this kind
/// of resource: `Service/<ns>/<name>` for endpoints and groups,
/// `Deployment/<ns>/<name>` or `Namespace//<name>` for stacks. Anything
/// else was not written by hawser, and is never judged garbage.
pub fn owner_fits(resource: Resource, reference: &str) -> bool {
    let parts: Vec<&str> = reference.split('/').collect();
    let [kind, ns, name] = parts[..] else {
        return false;
    };
    if name.is_empty() {
        return false;
    }
    match (resource, kind) {
        (Resource::VpcEndpoint | Resource::SecurityGroup, "Service") => !ns.is_empty(),
        (Resource::Stack, "Deployment") => !ns.is_empty(),
        (Resource::Stack, "Namespace") => ns.is_empty(),
        _ => false,
    }
}

/// The verdict on `found` from its tags and owner alone; a stack's
/// policy is read only for those this calls garbage (see [`with_policy`]).
pub fn judge(found: &Found, owners: &Owners, rules: Rules<'_>) -> Verdict {
    if found.tags.contains_key(TAG_RELEASED_FROM) {
        return Verdict::Keep(Keep::Released);
    }
    let (Some(reference), Some(uid)) = (found.owner(), found.uid()) else {
        return Verdict::Keep(Keep::NotOwned);
    };
    if !owner_fits(found.resource, reference) || uid.is_empty() {
        return Verdict::Keep(Keep::NotOwned);
    }
    if let Some(ns) = rules.namespace {
        if owner_namespace(reference) != Some(ns) {
            return Verdict::Keep(Keep::OtherNamespace);
        }
    }
    let (now, older_than) = (rules.now, rules.older_than);
    let why = match owners.get(reference) {
        None => Why::OwnerGone,
        Some(o) if o.uid != uid => Why::OwnerReplaced,
        Some(o) if o.plan_only || o.recorded.contains(&found.id) => {
            return Verdict::Keep(Keep::InUse)
        }
        Some(o) if !o.wants => Why::NoLongerAsked,
        Some(o) => match &o.scope {
            None => return Verdict::Keep(Keep::ScopeUnknown),
            Some(s) if !same_place(s, &found.scope) => Why::Moved {
                now: describe_scope(s),
            },
            Some(_) => return Verdict::Keep(Keep::InUse),
        },
    };
    let age = found
        .created
        .and_then(|c| now.duration_since(c).ok())
        .unwrap_or(Duration::MAX);
    if age < older_than {
        return Verdict::Keep(Keep::TooYoung {
            age_seconds: age.as_secs(),
        });
    }
    Verdict::Orphan(why)
}

/// A stack's verdict once its policy is known: a released stack, or one
/// whose policy someone else set, is kept.
pub fn with_policy(verdict: Verdict, policy: PolicyMark) -> Verdict {
    match (verdict, policy) {
        (Verdict::Orphan(_), PolicyMark::Released) => Verdict::Keep(Keep::Released),
        (Verdict::Orphan(_), PolicyMark::Other) => Verdict::Keep(Keep::PolicySetOutsideHawser),
        (v, _) => v,
    }
}

/// One resource listed more than once (an account seen through hawser's
/// own identity and a namespace's role, or two roles in one account) is
/// garbage only if every listing says so: where one says it is in use
/// (found where its owner's resources belong), the others are kept too.
pub fn same_resource_once(found: &[Found], verdicts: &mut [Verdict]) {
    let kept: std::collections::BTreeSet<&str> = found
        .iter()
        .zip(verdicts.iter())
        .filter(|(_, v)| !v.is_garbage())
        .map(|(f, _)| f.id.as_str())
        .collect();
    for (f, v) in found.iter().zip(verdicts.iter_mut()) {
        if v.is_garbage() && kept.contains(f.id.as_str()) {
            *v = Verdict::Keep(Keep::InUse);
        }
    }
}

/// A security group has no creation time in EC2: it is taken as old as
/// the oldest endpoint of the same owner found with it (hawser makes the
/// group just before the endpoint), else as old as can be.
pub fn date_groups(found: &mut [Found]) {
    type Key = (String, Option<String>, String);
    let key = |f: &Found, uid: &str| -> Key {
        (
            f.scope.region.clone(),
            f.scope.role_arn.clone(),
            uid.to_owned(),
        )
    };
    let mut oldest: BTreeMap<Key, SystemTime> = BTreeMap::new();
    for f in found.iter().filter(|f| f.resource == Resource::VpcEndpoint) {
        if let (Some(uid), Some(created)) = (f.uid(), f.created) {
            let key = key(f, uid);
            let e = oldest.entry(key).or_insert(created);
            *e = (*e).min(created);
        }
    }
    for f in found
        .iter_mut()
        .filter(|f| f.resource == Resource::SecurityGroup && f.created.is_none())
    {
        if let Some(k) = f.uid().map(|uid| key(f, uid)) {
            f.created = oldest.get(&k).copied();
        }
    }
}
