//! `hawser-bench ec2-rates`: a plain-HTTP proxy in front of moto that
//! throttles EC2 requests with AWS's documented token buckets
//! ([`crate::ec2_rates`]), as EC2 refuses them: HTTP 503 with
//! `RequestLimitExceeded` in EC2's error XML. Other services
//! (CloudFormation, STS) pass untouched. With `--unlimited` nothing is
//! refused. `GET /_stats` answers, as JSON, what each bucket let through
//! and refused, the bucket-limited minimum time of what it let through,
//! and when (Unix seconds) the first request about each Service arrived:
//! hawser's requests name their Service in the `hawser.io/owner` tag
//! (`Service/<namespace>/<name>`), as a filter or on create.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::ec2_rates::{is_filtered, limit_of, Buckets};

/// EC2's Query API version: the form's `Version` says a request is EC2's.
const EC2_VERSION: &str = "2016-11-15";

const THROTTLED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>\
<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>";

struct Shared {
    upstream: SocketAddr,
    unlimited: bool,
    buckets: Mutex<Buckets>,
    /// `Service/<namespace>/<name>` -> Unix seconds of its first request.
    first_seen: Mutex<BTreeMap<String, f64>>,
}

/// What the proxy reads of a request's form.
#[derive(Default)]
struct Form {
    names: Vec<String>,
    action: Option<String>,
    version: Option<String>,
    /// A `Service/<namespace>/<name>` value (the `hawser.io/owner` tag).
    owner: Option<String>,
}

fn form(body: &[u8]) -> Form {
    let text = String::from_utf8_lossy(body);
    let mut form = Form::default();
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "Action" => form.action = Some(v.to_owned()),
            "Version" => form.version = Some(v.to_owned()),
            _ => {}
        }
        // Names and values here are letters, digits, '-', '.' and '/'
        // (percent-encoded): decoding '/' is enough.
        let v = v.replace("%2F", "/").replace("%2f", "/");
        if v.starts_with("Service/") && form.owner.is_none() {
            form.owner = Some(v);
        }
        form.names.push(k.to_owned());
    }
    form
}

fn respond(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn stats(buckets: &Buckets, first_seen: &BTreeMap<String, f64>) -> String {
    let map = |m: &std::collections::BTreeMap<String, u64>| {
        let fields: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", fields.join(","))
    };
    let seen: Vec<String> = first_seen
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v:.3}"))
        .collect();
    format!(
        "{{\"passed\":{},\"throttled\":{},\"minimum_seconds\":{:.3},\"first_seen\":{{{}}}}}",
        map(&buckets.passed),
        map(&buckets.throttled),
        buckets.minimum().as_secs_f64(),
        seen.join(",")
    )
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/_stats" {
        let text = stats(
            &shared.buckets.lock().unwrap(),
            &shared.first_seen.lock().unwrap(),
        );
        return Ok(respond(200, "application/json", text));
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(respond(400, "text/plain", format!("rate proxy: {e}"))),
    };
    let form = form(&body);
    if let Some(owner) = form.owner {
        let mut seen = shared.first_seen.lock().unwrap();
        seen.entry(owner).or_insert_with(now_unix);
    }
    if let (Some(action), Some(EC2_VERSION)) = (form.action.as_deref(), form.version.as_deref()) {
        let mut limit = limit_of(action, is_filtered(form.names.iter().map(String::as_str)));
        if shared.unlimited {
            limit.capacity = f64::MAX;
        }
        let passed = shared
            .buckets
            .lock()
            .unwrap()
            .take(action, limit, Instant::now());
        if !passed {
            return Ok(respond(503, "text/xml", THROTTLED.to_owned()));
        }
    }
    Ok(match forward(shared.upstream, parts, body).await {
        Ok(response) => response,
        Err(e) => respond(502, "text/plain", format!("rate proxy: {e}")),
    })
}

/// One request to moto on a connection of its own.
async fn forward(
    upstream: SocketAddr,
    parts: http::request::Parts,
    body: Bytes,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let tcp = TcpStream::connect(upstream).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    // The body is whole now; hyper frames it anew.
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Full::new(body)))
}

pub fn serve(listen: SocketAddr, upstream: SocketAddr, unlimited: bool) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        upstream,
        unlimited,
        buckets: Mutex::new(Buckets::default()),
        first_seen: Mutex::new(BTreeMap::new()),
    });
    crate::bound::accept_forever(listen, move |tcp| {
        let shared = shared.clone();
        async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            Ok(())
        }
    })
}
