//! An HTTP proxy in front of moto that answers chosen AWS actions with an
//! error a set number of times, then passes them through. moto never
//! throttles and its AssumeRole never refuses, so this is how the tests
//! make the real SDK client (and hawser behind it) meet
//! `RequestLimitExceeded` and a trust policy that does not admit hawser.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response, Router};
use tokio::task::JoinHandle;

/// An error answer: HTTP status and AWS's XML body.
#[derive(Clone, Copy)]
struct Canned {
    status: u16,
    body: &'static str,
}

#[derive(Default)]
struct Faults {
    /// Action -> the error, and how many answers of it are still to give.
    pending: HashMap<String, (Canned, u32)>,
    /// Action -> error answers given.
    given: HashMap<String, u32>,
    /// Action -> when each request arrived (throttled or passed on).
    seen: HashMap<String, Vec<Instant>>,
    /// Action -> the form parameters of each request.
    params: HashMap<String, Vec<BTreeMap<String, String>>>,
}

#[derive(Clone)]
struct Shared {
    faults: Arc<Mutex<Faults>>,
    upstream: String,
    http: reqwest::Client,
}

pub struct FaultProxy {
    /// The proxy's URL, for `--aws-endpoint-url`.
    pub url: String,
    faults: Arc<Mutex<Faults>>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `upstream` (moto's URL) that throttles nothing yet.
    pub async fn start(upstream: &str) -> Self {
        let faults = Arc::new(Mutex::new(Faults::default()));
        let shared = Shared {
            faults: faults.clone(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, faults, task }
    }

    /// Answers the next `times` requests for `action` (e.g.
    /// `CreateVpcEndpoint`) with HTTP 503 `RequestLimitExceeded`.
    pub fn throttle(&self, action: &str, times: u32) {
        self.fail(action, THROTTLED, times);
    }

    /// Refuses every AssumeRole, as AWS does when the role's trust policy
    /// does not admit the caller (403 `AccessDenied`), until [`Self::heal`].
    pub fn deny_assume_role(&self) {
        self.fail("AssumeRole", ASSUME_ROLE_DENIED, u32::MAX);
    }

    /// Stops failing `action`.
    pub fn heal(&self, action: &str) {
        self.faults.lock().unwrap().pending.remove(action);
    }

    fn fail(&self, action: &str, canned: Canned, times: u32) {
        self.faults
            .lock()
            .unwrap()
            .pending
            .insert(action.to_owned(), (canned, times));
    }

    pub fn throttled(&self, action: &str) -> u32 {
        *self.faults.lock().unwrap().given.get(action).unwrap_or(&0)
    }

    pub fn seen(&self, action: &str) -> u32 {
        self.arrivals(action).len() as u32
    }

    /// When each request for `action` arrived.
    pub fn arrivals(&self, action: &str) -> Vec<Instant> {
        self.faults
            .lock()
            .unwrap()
            .seen
            .get(action)
            .cloned()
            .unwrap_or_default()
    }
}

impl FaultProxy {
    /// The form parameters of each request for `action`, in arrival
    /// order: what hawser asked for, exactly as AWS would see it.
    pub fn requests(&self, action: &str) -> Vec<BTreeMap<String, String>> {
        self.faults
            .lock()
            .unwrap()
            .params
            .get(action)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `Action` of an AWS query-protocol request (EC2, STS, IAM,
/// CloudFormation all put it in the form body).
fn action(body: &[u8]) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_owned)
}

const THROTTLED: Canned = Canned {
    status: 503,
    body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>\
<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>",
};

const ASSUME_ROLE_DENIED: Canned = Canned {
    status: 403,
    body: "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
<Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/moto \
is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>e2e</RequestId>\
</ErrorResponse>",
};

async fn forward(
    State(shared): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(action) = action(&body) {
        let mut faults = shared.faults.lock().unwrap();
        faults
            .seen
            .entry(action.clone())
            .or_default()
            .push(Instant::now());
        faults
            .params
            .entry(action.clone())
            .or_default()
            .push(form_urlencoded::parse(&body).into_owned().collect());
        if let Some((canned, left)) = faults.pending.get_mut(&action).filter(|(_, n)| *n > 0) {
            let canned = *canned;
            *left -= 1;
            *faults.given.entry(action).or_default() += 1;
            return Response::builder()
                .status(canned.status)
                .header("content-type", "text/xml")
                .body(canned.body.into())
                .unwrap();
        }
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
    let upstream = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(502)
                .body(format!("fault proxy: {e}").into())
                .unwrap()
        }
    };
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    response
        .body(upstream.bytes().await.unwrap_or_default().into())
        .unwrap()
}
