//! The bound: what any webhook server on this stack costs at least. It
//! terminates TLS with rustls, speaks HTTP/1.1 with hyper, reads each body
//! whole and answers a constant AdmissionReview. No routing, no parsing.

use std::{convert::Infallible, net::SocketAddr, path::Path, sync::Arc};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const ANSWER: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"7f0e2a8c-1c1b-4a44-9a35-2f0c1d1f0b01","allowed":true}}"#;

pub fn server_config(cert_dir: &Path) -> anyhow::Result<ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert_dir.join("tls.crt"))
        .context("reading tls.crt")?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(cert_dir.join("tls.key")).context("reading tls.key")?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body, as any real webhook must.
    let _ = req.into_body().collect().await;
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
        .expect("a constant response"))
}

pub fn serve(listen: SocketAddr, cert_dir: &Path) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(cert_dir)?));
    accept_forever(listen, move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            tcp.set_nodelay(true)?;
            let tls = acceptor.accept(tcp).await?;
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service_fn(answer))
                .await;
            Ok(())
        }
    })
}

/// Accepts connections on `listen` forever, each served by `conn` in a
/// task of its own. Worker threads default to the CPUs this process may
/// run on: one, under `taskset`, as for hawser.
pub fn accept_forever<F, Fut>(listen: SocketAddr, conn: F) -> anyhow::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (tcp, _) = listener.accept().await?;
            tokio::spawn(conn(tcp));
        }
    })
}
