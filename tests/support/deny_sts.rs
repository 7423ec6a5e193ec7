//! A proxy in front of moto that can refuse STS AssumeRole the way AWS
//! does when a role's trust policy does not admit the caller (403
//! AccessDenied), and passes everything else through. moto's AssumeRole
//! never fails, so this is how a test meets a refused AssumeRole.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response, Router};

#[derive(Clone)]
struct Shared {
    deny: Arc<AtomicBool>,
    upstream: String,
    http: reqwest::Client,
}

pub struct DenyAssumeRole {
    /// The proxy's URL, for `--aws-endpoint-url`.
    pub url: String,
    deny: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl DenyAssumeRole {
    /// Starts refusing every AssumeRole.
    pub async fn start(upstream: &str) -> Self {
        let deny = Arc::new(AtomicBool::new(true));
        let shared = Shared {
            deny: deny.clone(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, deny, task }
    }

    /// The trust policy fixed: AssumeRole goes through from now on.
    pub fn allow(&self) {
        self.deny.store(false, Ordering::SeqCst);
    }
}

impl Drop for DenyAssumeRole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(shared): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_assume_role = String::from_utf8_lossy(&body).contains("Action=AssumeRole&");
    if is_assume_role && shared.deny.load(Ordering::SeqCst) {
        let xml = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/moto is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>e2e</RequestId></ErrorResponse>";
        return Response::builder()
            .status(403)
            .header("content-type", "text/xml")
            .body(xml.into())
            .unwrap();
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = shared
        .http
        .request(method, format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let upstream = request.send().await.expect("moto answers");
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            response = response.header(name, value);
        }
    }
    response
        .body(upstream.bytes().await.unwrap_or_default().into())
        .unwrap()
}
