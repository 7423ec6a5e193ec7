//! An open-loop load generator: requests are due at fixed intervals
//! whatever the server does, and each one's latency is counted from when it
//! was due, not from when a connection was free to send it. A server that
//! falls behind is charged for the queue it causes (no coordinated
//! omission). Requests go round-robin over keep-alive HTTP/1.1 connections.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio::{net::TcpStream, sync::mpsc, time::Instant};
use tokio_rustls::TlsConnector;

/// A request due more than this long ago is not sent: it counts as late.
/// This keeps an overloaded step from running for minutes.
const GIVE_UP: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub tls: Arc<ClientConfig>,
}

pub fn client_config(ca_file: &std::path::Path) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).context("reading the CA")? {
        roots.add(cert?)?;
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

pub async fn connect(target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(target.addr.ip().into());
    let tls = TlsConnector::from(target.tls.clone())
        .connect(name, tcp)
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One request and its answer, for checking what a server says.
pub async fn once(target: &Target, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
    let mut sender = connect(target).await?;
    let response = sender.send_request(request(target, body)).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

pub fn request(target: &Target, body: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post(target.path.as_str())
        .header("host", target.addr.to_string())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(body))
        .expect("a well-formed request")
}

/// What one fixed-rate run saw.
#[derive(Debug, Clone)]
pub struct Run {
    /// Latencies of the answered requests, sorted.
    pub latencies: Vec<Duration>,
    /// Requests not sent because they were due more than GIVE_UP ago.
    pub late: usize,
    /// Requests answered with anything but 200, or not at all.
    pub errors: usize,
    pub due: usize,
}

impl Run {
    /// The q-quantile latency; a late or failed request counts as slower
    /// than any answered one.
    pub fn quantile(&self, q: f64) -> Duration {
        let rank = ((q * self.due as f64).ceil() as usize).clamp(1, self.due.max(1));
        self.latencies
            .get(rank - 1)
            .copied()
            .unwrap_or(Duration::MAX)
    }

    pub fn answered(&self) -> usize {
        self.latencies.len()
    }
}

/// Sends `rate` requests a second for `length`, due at even intervals,
/// over `connections` connections.
pub async fn open_loop(
    target: &Target,
    body: Bytes,
    rate: u32,
    length: Duration,
    connections: usize,
) -> anyhow::Result<Run> {
    let due = (rate as f64 * length.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut queues = Vec::with_capacity(connections);
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut sender = connect(target).await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
        queues.push(tx);
        let (target, body) = (target.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut late, mut errors) = (Vec::new(), 0usize, 0usize);
            while let Some(at) = rx.recv().await {
                if at.elapsed() > GIVE_UP {
                    late += 1;
                    continue;
                }
                let ok = match sender.ready().await {
                    Ok(()) => match sender.send_request(request(&target, body.clone())).await {
                        Ok(response) => {
                            let status = response.status();
                            response.into_body().collect().await.is_ok() && status == 200
                        }
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                if ok {
                    latencies.push(at.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, late, errors)
        }));
    }
    let start = Instant::now() + Duration::from_millis(5);
    for i in 0..due {
        let at = start + interval.mul_f64(i as f64);
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
        // A worker only stops when its queue is dropped.
        let _ = queues[i % connections].send(at);
    }
    drop(queues);
    let mut run = Run {
        latencies: Vec::with_capacity(due),
        late: 0,
        errors: 0,
        due,
    };
    for worker in workers {
        let (latencies, late, errors) = worker.await?;
        run.latencies.extend(latencies);
        run.late += late;
        run.errors += errors;
    }
    run.latencies.sort_unstable();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(answered_ms: &[u64], late: usize, errors: usize) -> Run {
        let mut latencies: Vec<Duration> = answered_ms
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect();
        latencies.sort_unstable();
        Run {
            due: latencies.len() + late + errors,
            latencies,
            late,
            errors,
        }
    }

    #[test]
    fn quantiles_are_nearest_rank_over_every_request_due() {
        let r = run(&(1..=100).collect::<Vec<_>>(), 0, 0);
        assert_eq!(r.quantile(0.5), Duration::from_millis(50));
        assert_eq!(r.quantile(0.99), Duration::from_millis(99));
        assert_eq!(r.quantile(0.999), Duration::from_millis(100));
    }

    #[test]
    fn late_and_failed_requests_count_as_slower_than_any_answer() {
        // 98 answered, 2 never: the p99 is not an answered latency.
        let r = run(&(1..=98).collect::<Vec<_>>(), 1, 1);
        assert_eq!(r.quantile(0.98), Duration::from_millis(98));
        assert_eq!(r.quantile(0.99), Duration::MAX);
    }
}
