//! The monitoring artefacts against promtool: the PrometheusRule's rules
//! pass `check rules` and `test rules`, a live `/metrics` passes `check
//! metrics`, and every hawser metric the alerts and dashboard use exists.

use crate::support;

use std::{
    collections::BTreeSet,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use support::artefacts::{find, load, CHART, MONITORING};
use support::*;

/// Metrics the alerts and dashboard use that only have samples once a
/// controller has run (a webhook-only hawser registers them but exposes
/// no series).
const METRICS_FROM_CONTROLLERS: &[&str] = &[
    "hawser_reconcile_total",
    "hawser_reconcile_errors_total",
    "hawser_reconcile_duration_seconds",
    "hawser_aws_api_calls_total",
    "hawser_managed_objects",
];

fn promtool() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool is missing: run `bash hack/install-promtool.sh` (hack/test.sh does)"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn run_promtool(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(promtool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = stdin.unwrap_or_default().to_string();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {}: {text}", args.join(" "));
    text
}

/// `hawser_*` metric names (without histogram suffixes) in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("hawser_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn promtool_accepts_the_prometheus_rule() {
    let rule = find(&load(MONITORING), "PrometheusRule").clone();
    let shipped: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(Path::new(CHART).join("files/prometheus-rules.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        rule["spec"], shipped,
        "the PrometheusRule is not files/prometheus-rules.yaml"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&rule["spec"]).unwrap()).unwrap();
    let out = run_promtool(&["check", "rules", file.to_str().unwrap()], None);
    assert!(out.contains("SUCCESS"), "{out}");
    // The alerts' unit tests (expected labels, values and annotations).
    let tests = Path::new(CHART).join("files/prometheus-rules.test.yaml");
    run_promtool(&["test", "rules", tests.to_str().unwrap()], None);
}

#[tokio::test]
async fn promtool_accepts_live_metrics_and_every_used_metric_exists() {
    let hawser = Hawser::start(&[]).await;
    // Counters appear once they have a sample: answer a few reviews,
    // an undecodable one included.
    let ca = std::fs::read(hawser.cert_dir.join("ca.crt")).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    for (path, fixture) in [
        ("/mutate", "deployment-create-privileged.json"),
        ("/validate", "deployment-create-privileged.json"),
        ("/validate", "review-without-request.json"),
    ] {
        let body = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(fixture),
        )
        .unwrap();
        https
            .post(format!("{}{path}", hawser.webhook_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
    }
    // ... and reload a renewed certificate.
    write_certs(&hawser.cert_dir);
    let metrics = eventually("a certificate reload", Duration::from_secs(30), || async {
        let m = hawser.metrics().await;
        m.contains("hawser_webhook_cert_reloads_total{")
            .then_some(m)
    })
    .await;
    assert!(
        metrics.contains("hawser_admission_requests_total{"),
        "{metrics}"
    );
    let out = run_promtool(&["check", "metrics"], Some(&metrics));
    assert!(out.trim().is_empty(), "promtool check metrics: {out}");

    let exposed: BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    let rules =
        std::fs::read_to_string(Path::new(CHART).join("files/prometheus-rules.yaml")).unwrap();
    let dashboard = std::fs::read_to_string(Path::new(CHART).join("files/dashboard.json")).unwrap();
    for name in metric_names(&rules).union(&metric_names(&dashboard)) {
        assert!(
            exposed.contains(name) || METRICS_FROM_CONTROLLERS.contains(&name.as_str()),
            "the alerts or dashboard use {name}, which hawser does not expose"
        );
    }
}
