//! `hawser lint`: the admission webhook's decisions on manifests, offline.
//!
//! Each Deployment, Service and Namespace of the input is put to the
//! webhook's own `/mutate` and then, with the patch applied, to its
//! `/validate`, as the apiserver would for `kubectl apply` of a new object
//! by an ordinary user. The decisions are made by
//! [`crate::webhook::decide_review`], the function the server runs: no rule
//! has a second copy here. Namespace-dependent rules read the Namespaces of
//! the input, then (with `--kubeconfig`) the cluster's; a namespace found
//! in neither is reported, and its annotations are taken as unset.
//!
//! Exit status: 0 when nothing would be refused, 1 when something would,
//! 2 when the input cannot be read.

pub mod input;
mod report;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::{json, Value};

pub use self::input::{Object, Unreadable};
use crate::{
    cli::LintArgs,
    metrics::Metrics,
    namespaces::{namespace_meta, NamespaceCache},
    webhook::{self, Webhook},
};

/// The user the reviews are made as: an ordinary user, not hawser.
pub const USERNAME: &str = "hawser-lint";

/// What the webhook decided for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Admitted unchanged.
    Allowed,
    /// Admitted with the patch `/mutate` answered.
    Patched,
    /// `/validate` refused it.
    Refused,
    /// A kind hawser's webhooks are not registered for.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub file: String,
    pub document: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    pub api_version: String,
    pub kind: String,
    /// The namespace the object is admitted in (none for a Namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The JSON patch `/mutate` answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub objects: Vec<Finding>,
    /// Namespaces objects are in that neither the input nor the cluster
    /// has: their annotations were taken as unset.
    pub unknown_namespaces: BTreeSet<String>,
}

impl Report {
    pub fn refused(&self) -> usize {
        self.count(Verdict::Refused)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.objects.iter().filter(|f| f.verdict == verdict).count()
    }

    /// The exit status: 1 when anything would be refused.
    pub fn status(&self) -> i32 {
        i32::from(self.refused() > 0)
    }
}

/// The kinds hawser's webhooks are registered for, with their resources.
fn admitted(api_version: &str, kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match (api_version, kind) {
        ("apps/v1", "Deployment") => Some(("apps", "v1", "deployments")),
        ("v1", "Service") => Some(("", "v1", "services")),
        ("v1", "Namespace") => Some(("", "v1", "namespaces")),
        _ => None,
    }
}

/// What the webhook is configured with for linting: `hawser run`'s
/// defaults, and the flags lint shares with it.
pub fn webhook_config(args: &LintArgs) -> webhook::Config {
    webhook::Config {
        allow_privileged_containers: args.allow_privileged_containers,
        allow_system_groups: args.allow_system_groups,
        controller_usernames: vec![],
        excluded_namespaces: args.input.excluded_namespaces.clone(),
        // Never wait: every namespace there is to know is known up front.
        namespace_wait: Duration::ZERO,
        aws_auth_guard: Default::default(),
        managed: Default::default(),
        default_region: crate::annotations::default_region(args.region.as_deref(), |k| {
            std::env::var(k).ok()
        }),
    }
}

/// The Namespaces' annotations the rules may read: the cluster's (with a
/// kubeconfig), overridden by the input's.
pub fn known_namespaces(
    objects: &[Object],
    cluster: Vec<(String, BTreeMap<String, String>)>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut known: BTreeMap<String, BTreeMap<String, String>> = cluster.into_iter().collect();
    for o in objects.iter().filter(|o| o.kind() == "Namespace") {
        known.insert(o.name().to_owned(), o.annotations());
    }
    known
}

/// [`known_namespaces`] as the webhook's cache, and their names.
fn namespaces(
    objects: &[Object],
    cluster: Vec<(String, BTreeMap<String, String>)>,
) -> (NamespaceCache, BTreeSet<String>) {
    let known = known_namespaces(objects, cluster);
    let names = known.keys().cloned().collect();
    let metas = known
        .iter()
        .map(|(name, ann)| {
            let pairs: Vec<(&str, &str)> =
                ann.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            namespace_meta(name, &pairs)
        })
        .collect();
    (NamespaceCache::from_list(metas), names)
}

/// The AdmissionReview the apiserver would send for creating `object`.
fn review_of(
    object: &Value,
    (group, version, resource): (&str, &str, &str),
    namespace: Option<&str>,
    uid: usize,
) -> Vec<u8> {
    let kind = object["kind"].clone();
    let mut request = json!({
        "uid": format!("hawser-lint-{uid}"),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": object["metadata"]["name"],
        "operation": "CREATE",
        "userInfo": {"username": USERNAME, "groups": ["system:authenticated"]},
        "object": object,
        "oldObject": null,
        "dryRun": false,
    });
    if let Some(ns) = namespace {
        request["namespace"] = json!(ns);
    }
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))
    .expect("a JSON value always encodes")
}

/// Puts one object to `/mutate`, then its mutated form to `/validate`.
async fn check(ctx: &webhook::Context, o: &Object, default_namespace: &str, uid: usize) -> Finding {
    let mut finding = Finding {
        file: o.file.clone(),
        document: o.document,
        item: o.item,
        api_version: o.api_version().to_owned(),
        kind: o.kind().to_owned(),
        namespace: None,
        name: o.name().to_owned(),
        verdict: Verdict::Skipped,
        message: None,
        warnings: vec![],
        patch: None,
    };
    let Some(resource) = admitted(o.api_version(), o.kind()) else {
        return finding;
    };
    let mut object = o.value.clone();
    if o.kind() != "Namespace" {
        let ns = o.namespace().unwrap_or(default_namespace).to_owned();
        object["metadata"]["namespace"] = json!(ns);
        finding.namespace = Some(ns);
    }
    let namespace = finding.namespace.clone();
    let namespace = namespace.as_deref();
    let body = review_of(&object, resource, namespace, uid);
    let mutated = match webhook::decide_review(ctx, Webhook::Mutate, &body).await {
        Ok(r) => r,
        Err(why) => return refuse(finding, why),
    };
    finding
        .warnings
        .extend(mutated.warnings.unwrap_or_default());
    if let Some(bytes) = mutated.patch {
        let patch: json_patch::Patch = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(e) => return refuse(finding, format!("hawser's patch is not a JSON patch: {e}")),
        };
        if let Err(e) = json_patch::patch(&mut object, &patch) {
            return refuse(finding, format!("hawser's patch does not apply: {e}"));
        }
        finding.patch = Some(serde_json::to_value(&patch).unwrap_or_default());
    }
    let body = review_of(&object, resource, namespace, uid);
    let validated = match webhook::decide_review(ctx, Webhook::Validate, &body).await {
        Ok(r) => r,
        Err(why) => return refuse(finding, why),
    };
    for w in validated.warnings.unwrap_or_default() {
        if !finding.warnings.contains(&w) {
            finding.warnings.push(w);
        }
    }
    if !validated.allowed {
        return refuse(finding, validated.result.message);
    }
    finding.verdict = match finding.patch {
        Some(_) => Verdict::Patched,
        None => Verdict::Allowed,
    };
    finding
}

fn refuse(mut finding: Finding, message: String) -> Finding {
    finding.verdict = Verdict::Refused;
    finding.message = Some(message);
    finding
}

/// Lints `objects`, the cluster's Namespaces given as (name, annotations).
pub async fn lint(
    args: &LintArgs,
    objects: &[Object],
    cluster: Vec<(String, BTreeMap<String, String>)>,
) -> anyhow::Result<Report> {
    let (cache, known) = namespaces(objects, cluster);
    let ctx = webhook::Context {
        config: webhook_config(args),
        namespaces: cache,
        metrics: Arc::new(Metrics::new()?),
        client: None,
    };
    let mut report = Report::default();
    for (i, o) in objects.iter().enumerate() {
        let finding = check(&ctx, o, &args.input.namespace, i + 1).await;
        if let Some(ns) = &finding.namespace {
            let excluded = args.input.excluded_namespaces.contains(ns);
            if !known.contains(ns) && !excluded && finding.verdict != Verdict::Skipped {
                report.unknown_namespaces.insert(ns.clone());
            }
        }
        report.objects.push(finding);
    }
    Ok(report)
}

/// The cluster's Namespaces and their annotations, read with `kubeconfig`.
pub async fn cluster_namespaces(
    kubeconfig: &std::path::Path,
) -> anyhow::Result<Vec<(String, BTreeMap<String, String>)>> {
    use k8s_openapi::api::core::v1::Namespace;
    let client = crate::kubeconfig::client(Some(kubeconfig)).await?;
    let api: kube::Api<Namespace> = kube::Api::all(client);
    let list = api
        .list_metadata(&Default::default())
        .await
        .context("listing the cluster's Namespaces")?;
    Ok(list
        .items
        .into_iter()
        .map(|ns| {
            (
                ns.metadata.name.unwrap_or_default(),
                ns.metadata.annotations.unwrap_or_default(),
            )
        })
        .collect())
}

/// `hawser lint`: reads, lints, prints; returns the exit status.
pub async fn run(args: &LintArgs) -> i32 {
    let objects = match read_all(&args.input.files) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hawser lint: {e}");
            return 2;
        }
    };
    let report = async {
        let cluster = match &args.input.kubeconfig {
            Some(path) => cluster_namespaces(path).await?,
            None => vec![],
        };
        lint(args, &objects, cluster).await
    };
    match report.await {
        Ok(report) => {
            print!(
                "{}",
                report::render(&report, args.input.output, args.show_mutations)
            );
            report.status()
        }
        Err(e) => {
            eprintln!("hawser lint: {e:#}");
            2
        }
    }
}

/// Every object of the files, directories and `-` given, in order.
pub fn read_all(paths: &[std::path::PathBuf]) -> Result<Vec<Object>, Unreadable> {
    let mut objects = Vec::new();
    for file in input::files(paths)? {
        objects.extend(input::read(&file)?);
    }
    Ok(objects)
}

/// Renders for `--output`.
pub use report::render;

#[cfg(test)]
mod tests;
