//! How `hawser lint` prints its report: one line per object (where it is,
//! what it is, what the webhook would do), its warnings, optionally its
//! patch; or the whole report as JSON.

use std::fmt::Write as _;

use super::{Finding, Report, Verdict};
use crate::cli::LintOutput;

pub fn render(report: &Report, output: LintOutput, show_mutations: bool) -> String {
    match output {
        LintOutput::Json => {
            let mut text = serde_json::to_string_pretty(report).expect("a report always encodes");
            text.push('\n');
            text
        }
        LintOutput::Text => text(report, show_mutations),
    }
}

fn what(f: &Finding) -> String {
    if f.kind.is_empty() {
        return "(no kind)".into();
    }
    match &f.namespace {
        Some(ns) => format!("{} {ns}/{}", f.kind, f.name),
        None => format!("{} {}", f.kind, f.name),
    }
}

fn place(f: &Finding) -> String {
    match f.item {
        Some(item) => format!("{}: document {}, item {item}", f.file, f.document),
        None => format!("{}: document {}", f.file, f.document),
    }
}

fn text(report: &Report, show_mutations: bool) -> String {
    let mut out = String::new();
    for f in &report.objects {
        let verdict = match (f.verdict, &f.patch) {
            (Verdict::Refused, _) => {
                format!("refused: {}", f.message.as_deref().unwrap_or_default())
            }
            (Verdict::Patched, Some(patch)) => {
                let n = patch.as_array().map_or(0, Vec::len);
                format!("admitted with changes ({})", plural(n, "patch operation"))
            }
            (Verdict::Allowed | Verdict::Patched, _) => "admitted unchanged".into(),
            (Verdict::Skipped, _) if f.api_version.is_empty() || f.kind.is_empty() => {
                "skipped: not a Kubernetes object (no apiVersion or kind)".into()
            }
            (Verdict::Skipped, _) => {
                "skipped: hawser admits only Deployments, Services and Namespaces".into()
            }
        };
        let _ = writeln!(out, "{}: {}: {verdict}", place(f), what(f));
        for w in &f.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        if show_mutations {
            for op in f
                .patch
                .iter()
                .flat_map(|p| p.as_array().into_iter().flatten())
            {
                let _ = writeln!(out, "  patch: {op}");
            }
        }
    }
    for ns in &report.unknown_namespaces {
        let _ = writeln!(
            out,
            "note: namespace {ns} is neither in the input nor read from a cluster: its \
             annotations were taken as unset (give its Namespace with -f, or --kubeconfig)"
        );
    }
    let warnings: usize = report.objects.iter().map(|f| f.warnings.len()).sum();
    let _ = writeln!(
        out,
        "{}: {} admitted unchanged, {} admitted with changes, {} refused, {} skipped; {}",
        plural(report.objects.len(), "object"),
        report.count(Verdict::Allowed),
        report.count(Verdict::Patched),
        report.refused(),
        report.count(Verdict::Skipped),
        plural(warnings, "warning"),
    );
    out
}

fn plural(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}
