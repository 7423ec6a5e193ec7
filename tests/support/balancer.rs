//! A TCP load balancer standing in for the webhook Service: it forwards
//! each connection to a backend whose `/readyz` answered 200 at the last
//! check, round robin, and tries the next backend when a connect fails.
//! That is what the apiserver sees in a cluster, where kube-proxy routes to
//! the ready endpoints of the Service; TLS passes through untouched.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

struct Backend {
    /// `host:port` of the webhook listener.
    addr: String,
    readyz: String,
    ready: AtomicBool,
}

pub struct Balancer {
    /// `https://127.0.0.1:<port>`, for the webhook configurations.
    pub url: String,
    tasks: Vec<JoinHandle<()>>,
}

/// How often readiness is checked: faster than a kubelet's probe, so the
/// tests do not wait on it, but the same mechanism.
const CHECK_EVERY: Duration = Duration::from_millis(200);

impl Balancer {
    /// Balances over `(webhook host:port, admin base URL)` pairs.
    pub async fn start(backends: &[(&str, &str)]) -> Self {
        let backends: Arc<Vec<Backend>> = Arc::new(
            backends
                .iter()
                .map(|(addr, admin)| Backend {
                    addr: addr.to_string(),
                    readyz: format!("{admin}/readyz"),
                    ready: AtomicBool::new(false),
                })
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let checker = {
            let backends = backends.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(1))
                    .build()
                    .unwrap();
                loop {
                    for b in backends.iter() {
                        let ok = http
                            .get(&b.readyz)
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success());
                        b.ready.store(ok, Ordering::Relaxed);
                    }
                    tokio::time::sleep(CHECK_EVERY).await;
                }
            })
        };
        let next = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (backends, next) = (backends.clone(), next.clone());
                tokio::spawn(async move {
                    if let Some(mut outbound) = connect(&backends, &next).await {
                        let mut inbound = inbound;
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            url,
            tasks: vec![checker, acceptor],
        }
    }
}

/// The next ready backend that accepts a connection; `None` (the client's
/// connection is dropped) when none does.
async fn connect(backends: &[Backend], next: &AtomicUsize) -> Option<TcpStream> {
    let start = next.fetch_add(1, Ordering::Relaxed);
    for i in 0..backends.len() {
        let b = &backends[(start + i) % backends.len()];
        if !b.ready.load(Ordering::Relaxed) {
            continue;
        }
        if let Ok(stream) = TcpStream::connect(&b.addr).await {
            return Some(stream);
        }
    }
    None
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
