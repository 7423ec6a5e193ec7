//! `hawser plan`: what applying manifests would make hawser's controllers
//! do in AWS, without doing it.
//!
//! Each object goes through `hawser lint` first (the webhook's own
//! decisions: a refused object plans nothing). Then the controllers' own
//! pure functions decide, from the manifest's annotations and what exists:
//! - a Service: [`crate::controller::vpce::desired::desired`], what EC2
//!   holds with the Service's ownership tags (with `--kubeconfig`, for a
//!   Service that exists), [`crate::controller::vpce::plan::plan`] and
//!   its [`actions`](crate::controller::vpce::plan::actions);
//! - a Deployment or Namespace with a stack:
//!   [`crate::controller::stack::desired::desired`], DescribeStacks, and
//!   for an update a change set that is created, described and deleted
//!   ([`preview`]);
//! - an object in the cluster whose manifest drops the annotation: its
//!   cleanup (deletion, or release with `retain`).
//!
//! Only reads, plus the transient change set.

mod object;
pub mod preview;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::cli::{LintArgs, LintOutput, PlanArgs};
use crate::controller::planned::Action;
use crate::lint::{self, Object};

/// What happens to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// AWS changes, listed.
    Changes,
    /// Its AWS resources already match.
    NoChange,
    /// The webhook would refuse it: nothing happens.
    Refused,
    /// It could not be planned (AWS or the cluster could not be read, a
    /// template ConfigMap is missing, a foreign stack holds its name...).
    Error,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub file: String,
    pub document: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub status: Status,
    /// `region`, or `region as role-arn`: where the actions happen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Objects hawser's controllers act on; other objects are left out.
    pub objects: Vec<Entry>,
}

impl Report {
    pub fn status(&self) -> i32 {
        let bad = self
            .objects
            .iter()
            .any(|e| matches!(e.status, Status::Refused | Status::Error));
        i32::from(bad)
    }
}

/// The report as text: per object, a line, then one line per action.
pub fn render_text(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for e in &report.objects {
        let name = match &e.namespace {
            Some(ns) => format!("{ns}/{}", e.name),
            None => e.name.clone(),
        };
        let place = match e.item {
            Some(i) => format!("{}: document {}, item {i}", e.file, e.document),
            None => format!("{}: document {}", e.file, e.document),
        };
        let what = match e.status {
            Status::Changes => format!(
                "{} change(s) in {}",
                e.actions.len(),
                e.scope.as_deref().unwrap_or("AWS")
            ),
            Status::NoChange => "no change".to_owned(),
            Status::Refused => format!(
                "refused by the webhook: {}",
                e.message.as_deref().unwrap_or_default()
            ),
            Status::Error => format!("cannot plan: {}", e.message.as_deref().unwrap_or_default()),
        };
        let _ = writeln!(out, "{place}: {} {name}: {what}", e.kind);
        for a in &e.actions {
            let _ = writeln!(out, "  {a}");
        }
    }
    let changes: usize = report.objects.iter().map(|e| e.actions.len()).sum();
    let _ = writeln!(
        out,
        "{} object(s), {changes} AWS change(s)",
        report.objects.len()
    );
    out
}

/// `hawser plan`: reads, plans, prints; returns the exit status.
pub async fn run(args: &PlanArgs) -> i32 {
    let objects = match lint::read_all(&args.input.files) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hawser plan: {e}");
            return 2;
        }
    };
    match plan(args, &objects).await {
        Ok(report) => {
            match args.input.output {
                LintOutput::Text => print!("{}", render_text(&report)),
                LintOutput::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report serializes")
                ),
            }
            report.status()
        }
        Err(e) => {
            eprintln!("hawser plan: {e:#}");
            2
        }
    }
}

/// The lint flags `plan` shares.
fn lint_args(args: &PlanArgs) -> LintArgs {
    LintArgs {
        input: args.input.clone(),
        show_mutations: false,
        allow_privileged_containers: false,
        allow_system_groups: args.allow_system_groups,
        region: args.region.clone(),
    }
}

/// Plans `objects`.
pub async fn plan(args: &PlanArgs, objects: &[Object]) -> anyhow::Result<Report> {
    let client = match &args.input.kubeconfig {
        Some(path) => Some(crate::kubeconfig::client(Some(path)).await?),
        None => None,
    };
    let cluster_namespaces = match &args.input.kubeconfig {
        Some(path) => lint::cluster_namespaces(path).await?,
        None => vec![],
    };
    let findings = lint::lint(&lint_args(args), objects, cluster_namespaces.clone()).await?;
    let namespaces = lint::known_namespaces(objects, cluster_namespaces);
    let ctx = object::Context {
        args,
        client,
        namespaces,
        objects,
        aws: Default::default(),
    };
    let mut report = Report::default();
    for (o, finding) in objects.iter().zip(&findings.objects) {
        let kind = o.kind();
        if !matches!(kind, "Service" | "Deployment" | "Namespace")
            || finding.verdict == lint::Verdict::Skipped
        {
            continue;
        }
        let mut entry = Entry {
            file: o.file.clone(),
            document: o.document,
            item: o.item,
            kind: kind.to_owned(),
            namespace: finding.namespace.clone(),
            name: o.name().to_owned(),
            status: Status::NoChange,
            scope: None,
            actions: vec![],
            message: None,
        };
        if finding.verdict == lint::Verdict::Refused {
            entry.status = Status::Refused;
            entry.message = finding.message.clone();
            report.objects.push(entry);
            continue;
        }
        match object::plan(&ctx, o, finding.namespace.as_deref()).await {
            Ok(None) => continue,
            Ok(Some((scope, actions))) => {
                entry.status = match actions.is_empty() {
                    true => Status::NoChange,
                    false => Status::Changes,
                };
                entry.scope = Some(scope);
                entry.actions = actions;
            }
            Err(message) => {
                entry.status = Status::Error;
                entry.message = Some(message);
            }
        }
        report.objects.push(entry);
    }
    Ok(report)
}
