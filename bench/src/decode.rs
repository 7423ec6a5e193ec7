//! The floor under hawser's cost for a Deployment: decoding the body. Each
//! step is timed over many iterations in this process, after a tenth as
//! many to warm up. Wall-clock, so compare the steps with each other, not
//! across machines.

use std::{hint::black_box, path::Path, time::Instant};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The review with its object kept raw, as hawser's first pass reads it.
#[derive(Deserialize)]
struct Review<'a> {
    #[serde(borrow)]
    request: Request<'a>,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

fn time(step: &str, iterations: u32, mut f: impl FnMut()) {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let each = start.elapsed().as_secs_f64() / f64::from(iterations);
    println!("| {step} | {:.1} µs |", each * 1e6);
}

pub fn run(path: &Path, iterations: u32) -> anyhow::Result<()> {
    let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let review: Review = serde_json::from_slice(&body).context("not an AdmissionReview")?;
    let object = review.request.object.get().to_owned();
    let deployment: Deployment = serde_json::from_str(&object).context("not a Deployment")?;
    println!(
        "| step ({} bytes, {iterations} iterations) | each |",
        body.len()
    );
    println!("|---|---|");
    time("whole body into serde_json::Value", iterations, || {
        black_box(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
    });
    time(
        "whole body, object left raw (hawser's first pass)",
        iterations,
        || {
            black_box(
                serde_json::from_slice::<Review>(&body)
                    .unwrap()
                    .request
                    .object
                    .get()
                    .len(),
            );
        },
    );
    time(
        "object into k8s-openapi's Deployment, and dropped",
        iterations,
        || {
            black_box(serde_json::from_str::<Deployment>(&object).unwrap());
        },
    );
    time(
        "a clone of that Deployment, dropped (allocation alone)",
        iterations,
        || {
            black_box(deployment.clone());
        },
    );
    Ok(())
}
