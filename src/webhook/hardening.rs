//! Deployment hardening: the pure decisions. Given a pod spec and the
//! policy that applies to it, which JSON patch operations harden it, what
//! warnings explain them, and which containers must be refused.

use json_patch::{jsonptr::PointerBuf, AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};
use serde_json::{json, Map, Value};

use crate::annotations::{
    keys::{SECURITY_ALLOW_PRIVILEGED as ALLOW_PRIVILEGED, SECURITY_PROFILE as PROFILE},
    parse_security_profile, SecurityProfile,
};

/// Why privileged containers are allowed, if they are; named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegedAllowance {
    Denied,
    ByFlag,
    ByNamespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub privileged: PrivilegedAllowance,
    pub restricted: bool,
}

impl Policy {
    /// The policy for a workload: the controller flag, then the namespace's
    /// allowance; the stricter of the workload's and the namespace's
    /// profiles. A malformed profile is ignored here; the validating webhook
    /// refuses it with the reason.
    pub fn resolve(
        allow_privileged_flag: bool,
        namespace_annotations: Option<&std::collections::BTreeMap<String, String>>,
        workload_annotations: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Self {
        let ns = |key: &str| {
            namespace_annotations
                .and_then(|a| a.get(key))
                .map(String::as_str)
        };
        let privileged = if allow_privileged_flag {
            PrivilegedAllowance::ByFlag
        } else if ns(ALLOW_PRIVILEGED) == Some("true") {
            PrivilegedAllowance::ByNamespace
        } else {
            PrivilegedAllowance::Denied
        };
        let profile =
            |value: Option<&str>| value.and_then(|v| parse_security_profile(PROFILE, v).ok());
        let effective = SecurityProfile::effective(
            profile(ns(PROFILE)),
            profile(
                workload_annotations
                    .and_then(|a| a.get(PROFILE))
                    .map(String::as_str),
            ),
        );
        Self {
            privileged,
            restricted: effective == SecurityProfile::Restricted,
        }
    }

    fn privileged_allowed(&self) -> bool {
        self.privileged != PrivilegedAllowance::Denied
    }
}

/// One container of a pod spec with where it lives in the object.
struct Located<'a> {
    /// "container" or "init container", for messages.
    what: &'static str,
    container: &'a Container,
    pointer: PointerBuf,
}

fn containers<'a>(spec: &'a PodSpec, pod_spec_path: &PointerBuf) -> Vec<Located<'a>> {
    let mut out = Vec::new();
    let lists: [(&str, &str, &'a [Container]); 2] = [
        (
            "initContainers",
            "init container",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", "container", &spec.containers),
    ];
    for (field, what, list) in lists {
        for (i, container) in list.iter().enumerate() {
            let mut pointer = pod_spec_path.clone();
            pointer.push_back(field);
            pointer.push_back(i.to_string());
            out.push(Located {
                what,
                container,
                pointer,
            });
        }
    }
    out
}

/// The result of hardening one pod spec.
#[derive(Debug, Default, PartialEq)]
pub struct Hardening {
    pub patch: Vec<PatchOperation>,
    pub warnings: Vec<String>,
}

/// Computes the patch that hardens `spec`, found at `pod_spec_path` in the
/// object. Applying the patch and calling this again yields nothing.
pub fn harden(
    spec: &PodSpec,
    pod_spec_path: &PointerBuf,
    policy: Policy,
    namespace: &str,
) -> Hardening {
    let mut out = Hardening::default();
    let pod_sc = spec.security_context.as_ref();
    for loc in containers(spec, pod_spec_path) {
        let sc = loc.container.security_context.as_ref();
        let mut wanted = Map::new();

        let privileged = sc.and_then(|s| s.privileged);
        if !policy.privileged_allowed() && privileged != Some(false) {
            wanted.insert("privileged".into(), Value::Bool(false));
            if privileged == Some(true) {
                out.warnings.push(format!(
                    "hawser set securityContext.privileged=false on {} {:?}; to allow it, annotate namespace {namespace:?} with {ALLOW_PRIVILEGED}=true",
                    loc.what, loc.container.name
                ));
            }
        }
        if policy.restricted {
            restricted_defaults(sc, pod_sc, policy, &mut wanted);
        }
        if wanted.is_empty() {
            continue;
        }
        let mut base = loc.pointer;
        base.push_back("securityContext");
        match sc {
            None => out.patch.push(add(base, Value::Object(wanted))),
            Some(_) => {
                for (field, value) in wanted {
                    // capabilities may exist without drop; add at the
                    // deepest level that is missing.
                    if field == "capabilities" && sc.is_some_and(|s| s.capabilities.is_some()) {
                        let mut p = base.clone();
                        p.push_back("capabilities");
                        p.push_back("drop");
                        out.patch.push(add(p, value["drop"].clone()));
                    } else {
                        let mut p = base.clone();
                        p.push_back(field.as_str());
                        out.patch.push(add(p, value));
                    }
                }
            }
        }
    }
    out
}

/// The restricted profile's settings, each only where the manifest (at the
/// container or, where that exists, the pod level) left it unset.
fn restricted_defaults(
    sc: Option<&SecurityContext>,
    pod_sc: Option<&k8s_openapi::api::core::v1::PodSecurityContext>,
    policy: Policy,
    wanted: &mut Map<String, Value>,
) {
    let privileged = sc.and_then(|s| s.privileged) == Some(true) && policy.privileged_allowed();
    let adds_sys_admin = sc
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.as_ref())
        .is_some_and(|add| add.iter().any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN"));
    // The apiserver rejects allowPrivilegeEscalation=false together with
    // privileged=true or CAP_SYS_ADMIN; an allowed privileged container keeps
    // what it asked for.
    if sc.and_then(|s| s.allow_privilege_escalation).is_none() && !privileged && !adds_sys_admin {
        wanted.insert("allowPrivilegeEscalation".into(), Value::Bool(false));
    }
    if sc
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.drop.as_ref())
        .is_none()
    {
        wanted.insert("capabilities".into(), json!({"drop": ["ALL"]}));
    }
    if sc.and_then(|s| s.seccomp_profile.as_ref()).is_none()
        && pod_sc.and_then(|p| p.seccomp_profile.as_ref()).is_none()
    {
        wanted.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
    }
    if sc.and_then(|s| s.run_as_non_root).is_none()
        && pod_sc.and_then(|p| p.run_as_non_root).is_none()
    {
        wanted.insert("runAsNonRoot".into(), Value::Bool(true));
    }
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// Containers that ask for privileged mode where it is not allowed, as
/// refusal messages that say how to allow it.
pub fn privileged_violations(
    spec: &PodSpec,
    policy: Policy,
    kind: &str,
    name: &str,
    namespace: &str,
) -> Vec<String> {
    if policy.privileged_allowed() {
        return Vec::new();
    }
    containers(spec, &PointerBuf::root())
        .into_iter()
        .filter(|loc| {
            loc.container
                .security_context
                .as_ref()
                .and_then(|s| s.privileged)
                == Some(true)
        })
        .map(|loc| {
            format!(
                "{} {:?} of {kind} {namespace}/{name} sets securityContext.privileged=true, which namespace {namespace:?} does not allow; remove it, or annotate the namespace with {ALLOW_PRIVILEGED}=\"true\" (or run hawser with --allow-privileged-containers)",
                loc.what, loc.container.name
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pod(containers: Value) -> PodSpec {
        serde_json::from_value(containers).unwrap()
    }

    fn root() -> PointerBuf {
        PointerBuf::from_tokens(["spec", "template", "spec"])
    }

    const DENY: Policy = Policy {
        privileged: PrivilegedAllowance::Denied,
        restricted: false,
    };

    fn apply(spec: &PodSpec, h: &Hardening) -> PodSpec {
        let mut doc = json!({"spec": {"template": {"spec": spec}}});
        json_patch::patch(&mut doc, &h.patch).unwrap();
        serde_json::from_value(doc["spec"]["template"]["spec"].clone()).unwrap()
    }

    #[test]
    fn privileged_is_neutralised_with_a_warning_naming_the_container() {
        let spec = pod(json!({
            "initContainers": [{"name": "init", "image": "x"}],
            "containers": [{"name": "app", "image": "x", "securityContext": {"privileged": true}}]
        }));
        let h = harden(&spec, &root(), DENY, "team-a");
        assert_eq!(
            serde_json::to_value(&h.patch).unwrap(),
            json!([
                {"op": "add", "path": "/spec/template/spec/initContainers/0/securityContext", "value": {"privileged": false}},
                {"op": "add", "path": "/spec/template/spec/containers/0/securityContext/privileged", "value": false},
            ])
        );
        assert_eq!(
            h.warnings,
            vec![
                r#"hawser set securityContext.privileged=false on container "app"; to allow it, annotate namespace "team-a" with security.hawser.io/allow-privileged=true"#
            ]
        );
        let hardened = apply(&spec, &h);
        assert_eq!(
            harden(&hardened, &root(), DENY, "team-a"),
            Hardening::default()
        );
    }

    #[test]
    fn allowed_privileged_is_left_alone() {
        let spec = pod(
            json!({"containers": [{"name": "app", "image": "x", "securityContext": {"privileged": true}}]}),
        );
        for privileged in [
            PrivilegedAllowance::ByFlag,
            PrivilegedAllowance::ByNamespace,
        ] {
            let policy = Policy {
                privileged,
                restricted: false,
            };
            assert_eq!(harden(&spec, &root(), policy, "ns"), Hardening::default());
            assert!(privileged_violations(&spec, policy, "Deployment", "web", "ns").is_empty());
        }
    }

    #[test]
    fn restricted_fills_only_what_is_unset_and_is_idempotent() {
        let spec = pod(json!({
            "securityContext": {"runAsNonRoot": false},
            "containers": [
                {"name": "a", "image": "x"},
                {"name": "b", "image": "x", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}, "allowPrivilegeEscalation": true}}
            ]
        }));
        let policy = Policy {
            privileged: PrivilegedAllowance::Denied,
            restricted: true,
        };
        let h = harden(&spec, &root(), policy, "ns");
        assert_eq!(
            serde_json::to_value(&h.patch).unwrap(),
            json!([
                {"op": "add", "path": "/spec/template/spec/containers/0/securityContext", "value": {
                    "privileged": false, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}},
                {"op": "add", "path": "/spec/template/spec/containers/1/securityContext/capabilities/drop", "value": ["ALL"]},
                {"op": "add", "path": "/spec/template/spec/containers/1/securityContext/privileged", "value": false},
                {"op": "add", "path": "/spec/template/spec/containers/1/securityContext/seccompProfile", "value": {"type": "RuntimeDefault"}},
            ])
        );
        assert!(h.warnings.is_empty());
        let hardened = apply(&spec, &h);
        assert_eq!(
            harden(&hardened, &root(), policy, "ns"),
            Hardening::default()
        );
    }

    #[test]
    fn restricted_does_not_forbid_escalation_for_an_allowed_privileged_container() {
        let spec = pod(
            json!({"containers": [{"name": "a", "image": "x", "securityContext": {"privileged": true}}]}),
        );
        let policy = Policy {
            privileged: PrivilegedAllowance::ByNamespace,
            restricted: true,
        };
        let h = harden(&spec, &root(), policy, "ns");
        let hardened = apply(&spec, &h);
        let sc = hardened.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.privileged, Some(true));
        assert_eq!(sc.allow_privilege_escalation, None);
        assert_eq!(sc.run_as_non_root, Some(true));
    }

    #[test]
    fn violations_name_the_container_and_the_way_out() {
        let spec = pod(json!({"containers": [
            {"name": "ok", "image": "x"},
            {"name": "bad", "image": "x", "securityContext": {"privileged": true}}
        ]}));
        assert_eq!(
            privileged_violations(&spec, DENY, "Deployment", "web", "team-a"),
            vec![
                r#"container "bad" of Deployment team-a/web sets securityContext.privileged=true, which namespace "team-a" does not allow; remove it, or annotate the namespace with security.hawser.io/allow-privileged="true" (or run hawser with --allow-privileged-containers)"#
            ]
        );
    }

    #[test]
    fn policy_resolution() {
        let ns: BTreeMap<String, String> = [
            (ALLOW_PRIVILEGED.to_string(), "true".to_string()),
            (PROFILE.to_string(), "restricted".to_string()),
        ]
        .into();
        let p = Policy::resolve(false, Some(&ns), None);
        assert_eq!(
            p,
            Policy {
                privileged: PrivilegedAllowance::ByNamespace,
                restricted: true
            }
        );
        assert_eq!(
            Policy::resolve(true, None, None).privileged,
            PrivilegedAllowance::ByFlag
        );
        let not_quite: BTreeMap<String, String> =
            [(ALLOW_PRIVILEGED.to_string(), "yes".to_string())].into();
        assert_eq!(
            Policy::resolve(false, Some(&not_quite), None).privileged,
            PrivilegedAllowance::Denied
        );
        let wl: BTreeMap<String, String> = [(PROFILE.to_string(), "restricted".to_string())].into();
        assert!(Policy::resolve(false, None, Some(&wl)).restricted);
        // A Deployment cannot loosen its namespace's profile.
        let baseline: BTreeMap<String, String> =
            [(PROFILE.to_string(), "baseline".to_string())].into();
        assert!(Policy::resolve(false, Some(&ns), Some(&baseline)).restricted);
    }
}
