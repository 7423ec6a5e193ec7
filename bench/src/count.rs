//! Instructions per request, counted by valgrind's callgrind: unlike CPU
//! time, the same build and body give the same count run after run, so
//! two builds compare on a shared, noisy machine.
//!
//! Each case runs the server twice under callgrind: once sending the body
//! `WARM` times, once `WARM + n` times, each time over one keep-alive
//! connection after the same start-up and checks. The difference of the
//! two totals over `n` is what one request costs; start-up, the TLS
//! handshake and the checks cancel out.

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::{
    load::{self, Target},
    run::{self, Args, Bodies, Expect, Mode, Server},
};

const WARM: u32 = 100;

/// Which server a run starts.
#[derive(Clone, Copy)]
enum Which<'a> {
    Bound,
    Hawser(&'a Path),
}

/// Polls until the server can take the measured requests, without sending
/// it any: hawser's `/readyz` (its namespace cache has synced), or for the
/// bound a TCP connection.
async fn ready(server: &mut Server) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited before it served: {status}");
        }
        let up = match server.admin {
            Some(admin) => readyz(admin).await.unwrap_or(false),
            None => tokio::net::TcpStream::connect(server.webhook).await.is_ok(),
        };
        if up {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the server was not ready within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn readyz(admin: std::net::SocketAddr) -> anyhow::Result<bool> {
    let tcp = tokio::net::TcpStream::connect(admin).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
            .await?;
    tokio::spawn(conn);
    let request = http::Request::get("/readyz")
        .header("host", admin.to_string())
        .body(Full::new(Bytes::new()))?;
    let response = sender.send_request(request).await?;
    let ok = response.status() == 200;
    response.into_body().collect().await?;
    Ok(ok)
}

/// Callgrind's total for one run of `which` that sends `body` to `path`
/// `times` times over one connection.
async fn total(
    args: &Args,
    which: Which<'_>,
    path: &str,
    body: &Bytes,
    expect: Expect,
    times: u32,
    tls: &Arc<rustls::ClientConfig>,
) -> anyhow::Result<u64> {
    let dir = std::env::temp_dir();
    let out = dir.join(format!("hawser-bench-callgrind.{}", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let mode = Mode::Counted(&out);
    let mut server = match which {
        Which::Bound => run::start_bound(args, mode)?,
        Which::Hawser(binary) => {
            run::start_hawser(args, binary, &dir.join("hawser-bench-counted.log"), mode)?
        }
    };
    ready(&mut server).await?;
    let target = Target {
        addr: server.webhook,
        path: path.into(),
        tls: tls.clone(),
    };
    run::check(&target, body, expect).await?;
    let mut sender = load::connect(&target).await?;
    for _ in 0..times {
        sender.ready().await?;
        let response = sender
            .send_request(load::request(&target, body.clone()))
            .await?;
        let status = response.status();
        response.into_body().collect().await?;
        if status != 200 {
            bail!("{path} answered {status}");
        }
    }
    drop(sender);
    // SIGTERM: hawser shuts down gracefully, the bound dies of it; either
    // way callgrind writes its totals on the way out.
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    server.child.wait()?;
    let text = std::fs::read_to_string(&out).context("reading callgrind's output")?;
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|l| l.strip_prefix("totals: ").or(l.strip_prefix("summary: ")))
        .context("no totals in callgrind's output")?
        .trim()
        .parse()
        .context("callgrind's totals")
}

async fn per_request(
    args: &Args,
    which: Which<'_>,
    path: &str,
    body: &Bytes,
    expect: Expect,
    n: u32,
    tls: &Arc<rustls::ClientConfig>,
) -> anyhow::Result<f64> {
    let short = total(args, which, path, body, expect, WARM, tls).await?;
    let long = total(args, which, path, body, expect, WARM + n, tls).await?;
    Ok((long as f64 - short as f64) / n as f64)
}

pub async fn run(
    args: &Args,
    tls: &Arc<rustls::ClientConfig>,
    bodies: &Bodies,
    n: u32,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    eprintln!("the bound, the 12 KB Deployment");
    let bound = per_request(
        args,
        Which::Bound,
        "/",
        &bodies.deployment,
        Expect::Any,
        n,
        tls,
    )
    .await?;
    rows.push(("bound".to_string(), "-", "Deployment, 12 KB", bound));
    for binary in &args.hawser {
        let label = run::label(args, binary);
        // The hardened Deployment, from an uncounted run of this build.
        let clean = {
            let log = std::env::temp_dir().join("hawser-bench-clean.log");
            let mut hawser = run::start_hawser(args, binary, &log, Mode::Timed)?;
            let mutate = Target {
                addr: hawser.webhook,
                path: "/mutate".into(),
                tls: tls.clone(),
            };
            run::wait_ready(&mut hawser, &mutate, &bodies.namespace).await?;
            run::hardened(&mutate, &bodies.deployment).await?
        };
        for path in ["/mutate", "/validate"] {
            for (case, body, on_mutate, on_validate) in run::cases(bodies, &clean) {
                let expect = if path == "/mutate" {
                    on_mutate
                } else {
                    on_validate
                };
                eprintln!("{label} {path}, {case}");
                let count = per_request(args, Which::Hawser(binary), path, body, expect, n, tls)
                    .await
                    .with_context(|| format!("{label} {path}, {case}"))?;
                rows.push((label.clone(), path, case, count));
            }
        }
    }
    println!("\nInstructions per request (callgrind), {n} requests over one connection\n");
    println!("| server | path | body | instructions per request | × bound |");
    println!("|---|---|---|---|---|");
    for (server, path, body, count) in rows {
        println!(
            "| {server} | {path} | {body} | {:.0} k | {:.2}× |",
            count / 1e3,
            count / bound
        );
    }
    Ok(())
}
