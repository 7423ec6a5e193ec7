//! Admission round-trip latency against the real test bed.
//!
//! Sends N server-side dry-run creates of a Deployment through the
//! apiserver, first into a namespace the webhooks select, then into one
//! they do not, and reports:
//! - the apiserver's own view of each webhook call
//!   (`apiserver_admission_webhook_admission_duration_seconds`, before/after
//!   delta, quantiles interpolated within its buckets as Prometheus'
//!   `histogram_quantile` does);
//! - hawser's view (`hawser_admission_duration_seconds`, finer buckets);
//! - the client's end-to-end latency with and without the webhooks, as a
//!   ratio measured in the same run (absolute figures on a shared 2-core
//!   machine are noisy; the ratio is what to compare).
//!
//! Run: `bash hack/testenv/up.sh && . .testenv/env && cargo bench --bench admission_latency`
//! (N defaults to 500; set HAWSER_BENCH_N).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::{api::PostParams, Api, Client};
use support::*;

fn bucket_series(text: &str, metric: &str, filter: &[&str]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}_bucket{{")))
    {
        if !filter.iter().all(|f| line.contains(f)) {
            continue;
        }
        let le = line
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        };
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        match out.iter_mut().find(|(l, _)| *l == le) {
            Some(entry) => entry.1 += count,
            None => out.push((le, count)),
        }
    }
    out.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    out
}

fn delta(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(le, c)| {
            (
                *le,
                c - before
                    .iter()
                    .find(|(l, _)| l == le)
                    .map(|b| b.1)
                    .unwrap_or(0.0),
            )
        })
        .collect()
}

/// Prometheus' histogram_quantile: linear interpolation inside the bucket.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    if total == 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            return prev.0
                + (le - prev.0) * (rank - prev.1) / (count - prev.1).max(f64::MIN_POSITIVE);
        }
        prev = (le, count);
    }
    prev.0
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn apiserver_metrics(client: &Client) -> String {
    client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap()
}

async fn run(api: &Api<Deployment>, probe: &Deployment, n: usize) -> Vec<Duration> {
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        api.create(&dry, probe).await.expect("dry-run create");
        times.push(start.elapsed());
    }
    times.sort();
    times
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("HAWSER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let client = client().await;
    let id = unique("bench");
    let (hawser, hooked, _hooks) = hawser_with_hooks(&client, &id, &[]).await;
    let plain = TestNamespace::create(&client, &unique("bench-plain"), &[]).await;

    let hooked_api: Api<Deployment> = Api::namespaced(client.clone(), &hooked.name);
    let plain_api: Api<Deployment> = Api::namespaced(client.clone(), &plain.name);
    let probe_hooked = probe_deployment(&hooked.name);
    let probe_plain = probe_deployment(&plain.name);
    // Warm up connections and caches.
    run(&hooked_api, &probe_hooked, 20).await;
    run(&plain_api, &probe_plain, 20).await;

    let filter_m = [
        "name=\"mutate.hawser.io\"",
        "type=\"admit\"",
        "operation=\"CREATE\"",
    ];
    let filter_v = [
        "name=\"validate.hawser.io\"",
        "type=\"validating\"",
        "operation=\"CREATE\"",
    ];
    let metric = "apiserver_admission_webhook_admission_duration_seconds";
    let before = apiserver_metrics(&client).await;
    let with_hooks = run(&hooked_api, &probe_hooked, n).await;
    let after = apiserver_metrics(&client).await;
    let without = run(&plain_api, &probe_plain, n).await;

    let m = delta(
        &bucket_series(&after, metric, &filter_m),
        &bucket_series(&before, metric, &filter_m),
    );
    let v = delta(
        &bucket_series(&after, metric, &filter_v),
        &bucket_series(&before, metric, &filter_v),
    );
    let ours = bucket_series(
        &hawser.metrics().await,
        "hawser_admission_duration_seconds",
        &["webhook=\"mutate\""],
    );

    println!("admission latency, N = {n} sequential server-side dry-run creates");
    println!(
        "apiserver view (its histogram; buckets 5ms, 25ms, 100ms, 500ms, 2.5s, interpolated):"
    );
    println!(
        "  mutate.hawser.io   calls {:>5}  p50 {:6.2} ms  p99 {:6.2} ms",
        m.last().map(|b| b.1).unwrap_or(0.0),
        histogram_quantile(0.5, &m) * 1e3,
        histogram_quantile(0.99, &m) * 1e3
    );
    println!(
        "  validate.hawser.io calls {:>5}  p50 {:6.2} ms  p99 {:6.2} ms",
        v.last().map(|b| b.1).unwrap_or(0.0),
        histogram_quantile(0.5, &v) * 1e3,
        histogram_quantile(0.99, &v) * 1e3
    );
    println!("hawser view (hawser_admission_duration_seconds, mutate):");
    println!(
        "  p50 {:6.3} ms  p99 {:6.3} ms",
        histogram_quantile(0.5, &ours) * 1e3,
        histogram_quantile(0.99, &ours) * 1e3
    );
    let (p50w, p99w) = (percentile(&with_hooks, 0.5), percentile(&with_hooks, 0.99));
    let (p50o, p99o) = (percentile(&without, 0.5), percentile(&without, 0.99));
    println!("client view (whole request):");
    println!("  with hawser's webhooks    p50 {p50w:6.2} ms  p99 {p99w:6.2} ms");
    println!("  without webhooks          p50 {p50o:6.2} ms  p99 {p99o:6.2} ms");
    println!(
        "  ratio with/without        p50 {:.2}x  p99 {:.2}x",
        p50w / p50o,
        p99w / p99o
    );
}
