//! The comparison: the bound, then hawser, each pinned to the server CPUs
//! while this process (pinned elsewhere by hack/bench-webhook.sh) drives
//! it. Every figure of one repetition comes from the same run, so their
//! ratios compare even on a noisy machine.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use serde_json::Value;

use crate::{
    load::{self, Run, Target},
    procfs,
};

/// The latency target of the sweep: the highest rate whose p99 stays
/// within it, with nothing late or failed, is the "max RPS".
const P99_LIMIT: Duration = Duration::from_millis(5);
const WARM_UP: Duration = Duration::from_secs(1);

#[derive(clap::Args)]
pub struct Args {
    /// A hawser binary to measure (a release build); repeat it to compare
    /// builds in one run, each labelled with its file name
    #[arg(long, required = true)]
    pub(crate) hawser: Vec<PathBuf>,
    /// tls.crt, tls.key and ca.crt, as `hawser certs --ip 127.0.0.1 --out DIR` writes them
    #[arg(long)]
    cert_dir: PathBuf,
    /// Directory of the AdmissionReview bodies: deployment.json, service.json, namespace.json
    #[arg(long, default_value = "bench/bodies")]
    bodies: PathBuf,
    #[arg(long, default_value_t = 2)]
    repetitions: u32,
    /// Requests per second for the latency and CPU figures
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// Length of the fixed-rate run, in seconds
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Length of each step of the sweep, in seconds
    #[arg(long, default_value_t = 2.0)]
    step_seconds: f64,
    /// Rates of the sweep, in increasing order; it stops at the first miss
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,3000,4000,6000,8000,12000,16000,24000,32000,48000"
    )]
    sweep: Vec<u32>,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// CPUs the servers are pinned to (`taskset -c`)
    #[arg(long, default_value = "1")]
    server_cpus: String,
    /// A further argument for `hawser run` (repeatable)
    #[arg(long = "hawser-arg", allow_hyphen_values = true)]
    hawser_args: Vec<String>,
    /// Count instructions instead of timing: each server runs under
    /// valgrind's callgrind, and each case is sent 100 and 100 + N times in
    /// two runs over one connection; the difference over N is the
    /// instructions a request costs, start-up cancelled out
    #[arg(long, value_name = "N")]
    instructions: Option<u32>,
}

/// A server process, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) webhook: SocketAddr,
    /// hawser's admin port (`/readyz`); none for the bound.
    pub(crate) admin: Option<SocketAddr>,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// How a server is started: pinned, and under callgrind when counting.
#[derive(Clone, Copy)]
pub(crate) enum Mode<'a> {
    Timed,
    /// Callgrind writes its totals to this file when the server exits.
    Counted(&'a Path),
}

pub(crate) fn pinned(cpus: &str, program: &Path, mode: Mode<'_>) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", cpus]);
    if let Mode::Counted(out) = mode {
        cmd.args(["valgrind", "--tool=callgrind", "--quiet"])
            .arg(format!("--callgrind-out-file={}", out.display()));
    }
    cmd.arg(program).stdin(Stdio::null());
    cmd
}

pub(crate) fn start_bound(args: &Args, mode: Mode<'_>) -> anyhow::Result<Server> {
    let webhook = free_addr()?;
    let mut cmd = pinned(&args.server_cpus, &std::env::current_exe()?, mode);
    cmd.args(["bound", "--listen", &webhook.to_string(), "--cert-dir"])
        .arg(&args.cert_dir);
    Ok(Server {
        child: cmd.spawn().context("starting the bound")?,
        webhook,
        admin: None,
    })
}

pub(crate) fn start_hawser(
    args: &Args,
    binary: &Path,
    log: &Path,
    mode: Mode<'_>,
) -> anyhow::Result<Server> {
    let webhook = free_addr()?;
    let admin = free_addr()?;
    let mut cmd = pinned(&args.server_cpus, binary, mode);
    cmd.arg("run")
        .args(["--webhook-addr", &webhook.to_string()])
        .args(["--admin-addr", &admin.to_string()])
        .arg("--tls-cert-dir")
        .arg(&args.cert_dir)
        .args(&args.hawser_args)
        // No timer-driven re-reads of the certificates while counting.
        .args(match mode {
            Mode::Counted(_) => &["--tls-reload-interval", "1h"][..],
            Mode::Timed => &[][..],
        })
        .stdout(std::fs::File::create(log)?)
        .stderr(std::fs::File::create(log.with_extension("err"))?);
    Ok(Server {
        child: cmd.spawn().context("starting hawser")?,
        webhook,
        admin: Some(admin),
    })
}

/// Polls until the server answers `body` on `path` with 200.
pub(crate) async fn wait_ready(
    server: &mut Server,
    target: &Target,
    body: &Bytes,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited before it served: {status}");
        }
        if let Ok((200, _)) = load::once(target, body.clone()).await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the server at {} did not answer within 60 s",
                server.webhook
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What an answer must be for a case to count: a mismatch stops the run,
/// so no figure is ever recorded for a server that answered wrongly.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Expect {
    /// Any 200 (the bound).
    Any,
    /// Allowed, with a JSON patch.
    Patched,
    /// Allowed, without a patch.
    Allowed,
}

fn answer_of(body: &[u8]) -> anyhow::Result<Value> {
    let review: Value = serde_json::from_slice(body).context("the answer is not JSON")?;
    Ok(review["response"].clone())
}

pub(crate) async fn check(target: &Target, body: &Bytes, expect: Expect) -> anyhow::Result<()> {
    let (status, answer) = load::once(target, body.clone()).await?;
    if status != 200 {
        bail!("{} answered {status}", target.path);
    }
    if expect == Expect::Any {
        return Ok(());
    }
    let response = answer_of(&answer)?;
    let patched = response.get("patch").is_some_and(|p| !p.is_null());
    if response["allowed"] != Value::Bool(true) || patched != (expect == Expect::Patched) {
        bail!(
            "{} answered {}, expected {}",
            target.path,
            String::from_utf8_lossy(&answer),
            if expect == Expect::Patched {
                "an allowed answer with a patch"
            } else {
                "an allowed answer without a patch"
            }
        );
    }
    Ok(())
}

/// The Deployment as hawser's `/mutate` leaves it: `body` with the patch
/// hawser answers applied, so a second admission needs no patch.
pub(crate) async fn hardened(target: &Target, body: &Bytes) -> anyhow::Result<Bytes> {
    use base64::Engine as _;
    let (_, answer) = load::once(target, body.clone()).await?;
    let response = answer_of(&answer)?;
    let patch = response["patch"]
        .as_str()
        .context("hawser's answer has no base64 patch")?;
    let patch: json_patch::Patch =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(patch)?)?;
    let mut review: Value = serde_json::from_slice(body)?;
    json_patch::patch(&mut review["request"]["object"], &patch)?;
    Ok(serde_json::to_vec(&review)?.into())
}

pub struct Figures {
    pub server: String,
    pub path: &'static str,
    pub body: &'static str,
    pub fixed: Run,
    pub cpu_per_request: Duration,
    pub max_rps: Option<u32>,
    pub rss_kib: u64,
}

async fn measure(
    args: &Args,
    server: &Server,
    target: &Target,
    body: &Bytes,
) -> anyhow::Result<(Run, Duration, Option<u32>, u64)> {
    let conns = args.connections;
    load::open_loop(target, body.clone(), args.rate, WARM_UP, conns).await?;
    let before = procfs::cpu_time(server.pid())?;
    let fixed = load::open_loop(
        target,
        body.clone(),
        args.rate,
        Duration::from_secs_f64(args.seconds),
        conns,
    )
    .await?;
    let cpu = procfs::cpu_time(server.pid())?.saturating_sub(before);
    let cpu_per_request = cpu / fixed.answered().max(1) as u32;
    let mut max_rps = None;
    'sweep: for &rate in &args.sweep {
        // A miss is tried once more: on a shared machine one stall of a few
        // milliseconds in a short step is enough to miss, and the sweep
        // looks for what the server sustains, not for the machine's worst
        // moment.
        for attempt in 1..=2 {
            let step = Duration::from_secs_f64(args.step_seconds);
            let run = load::open_loop(target, body.clone(), rate, step, conns).await?;
            let met = run.errors == 0 && run.late == 0 && run.quantile(0.99) <= P99_LIMIT;
            eprintln!(
                "    {rate} RPS, attempt {attempt}: p99 {} {}",
                ms(run.quantile(0.99)),
                if met { "met" } else { "missed" }
            );
            if met {
                max_rps = Some(rate);
                continue 'sweep;
            }
        }
        break;
    }
    let (rss, _) = procfs::rss_kib(server.pid())?;
    Ok((fixed, cpu_per_request, max_rps, rss))
}

fn read_body(dir: &Path, name: &str) -> anyhow::Result<Bytes> {
    let path = dir.join(name);
    Ok(std::fs::read(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .into())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let tls = load::client_config(&args.cert_dir.join("ca.crt"))?;
    let bodies = Bodies {
        deployment: read_body(&args.bodies, "deployment.json")?,
        service: read_body(&args.bodies, "service.json")?,
        namespace: read_body(&args.bodies, "namespace.json")?,
    };
    if let Some(n) = args.instructions {
        return crate::count::run(&args, &tls, &bodies, n).await;
    }
    let deployment = &bodies.deployment;
    let logs = std::env::temp_dir();
    for rep in 1..=args.repetitions {
        let mut figures = Vec::new();
        {
            let mut bound = start_bound(&args, Mode::Timed)?;
            let target = Target {
                addr: bound.webhook,
                path: "/".into(),
                tls: tls.clone(),
            };
            wait_ready(&mut bound, &target, deployment).await?;
            eprintln!("repetition {rep}: the bound, the 12 KB Deployment");
            let (fixed, cpu, max_rps, rss) = measure(&args, &bound, &target, deployment).await?;
            figures.push(Figures {
                server: "bound".into(),
                path: "-",
                body: "Deployment, 12 KB",
                fixed,
                cpu_per_request: cpu,
                max_rps,
                rss_kib: rss,
            });
        }
        for binary in &args.hawser {
            let label = label(&args, binary);
            let log = logs.join(format!("hawser-bench-{rep}-{label}.log"));
            let mut hawser = start_hawser(&args, binary, &log, Mode::Timed)?;
            measure_hawser(&args, rep, &label, &mut hawser, &tls, &bodies, &mut figures).await?;
        }
        print_table(&args, rep, &figures);
    }
    Ok(())
}

pub(crate) fn ms(d: Duration) -> String {
    if d == Duration::MAX {
        "late".into()
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn print_table(args: &Args, rep: u32, figures: &[Figures]) {
    let bound = &figures[0];
    println!(
        "\nRepetition {rep}: {} RPS for {} s over {} connections; sweep steps of {} s\n",
        args.rate, args.seconds, args.connections, args.step_seconds
    );
    println!(
        "| server | path | body | p50 | p99 | p99.9 | CPU per request | × bound | max RPS at p99 ≤ 5 ms | × bound | RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for f in figures {
        let cpu_ratio =
            f.cpu_per_request.as_secs_f64() / bound.cpu_per_request.as_secs_f64().max(1e-9);
        let rps = f.max_rps.map_or("none".into(), |r| r.to_string());
        let rps_ratio = match (f.max_rps, bound.max_rps) {
            (Some(r), Some(b)) => format!("{:.0} %", 100.0 * r as f64 / b as f64),
            _ => "-".into(),
        };
        let failed = if f.fixed.late + f.fixed.errors > 0 {
            format!(" ({} late, {} failed)", f.fixed.late, f.fixed.errors)
        } else {
            String::new()
        };
        println!(
            "| {} | {} | {} | {} | {} | {}{failed} | {:.0} µs | {cpu_ratio:.2}× | {rps} | {rps_ratio} | {:.1} MiB |",
            f.server,
            f.path,
            f.body,
            ms(f.fixed.quantile(0.5)),
            ms(f.fixed.quantile(0.99)),
            ms(f.fixed.quantile(0.999)),
            f.cpu_per_request.as_secs_f64() * 1e6,
            f.rss_kib as f64 / 1024.0,
        );
    }
}

/// The request bodies: bench/bodies, as read.
/// What a build is called in the tables: "hawser", or its file name when
/// several are compared.
pub(crate) fn label(args: &Args, binary: &Path) -> String {
    match args.hawser.len() {
        1 => "hawser".to_string(),
        _ => binary
            .file_name()
            .map_or("hawser".into(), |n| n.to_string_lossy().into_owned()),
    }
}

/// The cases measured on each of hawser's paths: the body, and what
/// `/mutate` and `/validate` must answer to it.
pub(crate) fn cases<'a>(
    bodies: &'a Bodies,
    clean: &'a Bytes,
) -> [(&'static str, &'a Bytes, Expect, Expect); 4] {
    [
        (
            "Deployment, 12 KB, needs a patch",
            &bodies.deployment,
            Expect::Patched,
            Expect::Allowed,
        ),
        (
            "Deployment, 12 KB, needs none",
            clean,
            Expect::Allowed,
            Expect::Allowed,
        ),
        (
            "Service, vpce annotations",
            &bodies.service,
            Expect::Patched,
            Expect::Allowed,
        ),
        (
            "Namespace",
            &bodies.namespace,
            Expect::Allowed,
            Expect::Allowed,
        ),
    ]
}

pub(crate) struct Bodies {
    pub(crate) deployment: Bytes,
    pub(crate) service: Bytes,
    pub(crate) namespace: Bytes,
}

async fn measure_hawser(
    args: &Args,
    rep: u32,
    label: &str,
    hawser: &mut Server,
    tls: &Arc<rustls::ClientConfig>,
    bodies: &Bodies,
    figures: &mut Vec<Figures>,
) -> anyhow::Result<()> {
    let (deployment, namespace) = (&bodies.deployment, &bodies.namespace);
    let mutate = Target {
        addr: hawser.webhook,
        path: "/mutate".into(),
        tls: tls.clone(),
    };
    wait_ready(hawser, &mutate, namespace).await?;
    let clean = hardened(&mutate, deployment).await?;
    let cases = cases(bodies, &clean);
    for path in ["/mutate", "/validate"] {
        let target = Target {
            path: path.into(),
            ..mutate.clone()
        };
        for (case, body, on_mutate, on_validate) in &cases {
            let expect = if path == "/mutate" {
                *on_mutate
            } else {
                *on_validate
            };
            check(&target, body, expect)
                .await
                .with_context(|| format!("{label} {path}, {case}"))?;
            eprintln!("repetition {rep}: {label} {path}, {case}");
            let (fixed, cpu, max_rps, rss) = measure(args, hawser, &target, body).await?;
            figures.push(Figures {
                server: label.to_string(),
                path,
                body: case,
                fixed,
                cpu_per_request: cpu,
                max_rps,
                rss_kib: rss,
            });
        }
    }
    Ok(())
}
