//! An HTTP proxy in front of moto that answers chosen AWS actions with an
//! error a set number of times, then passes them through. moto never
//! throttles, never fails with a 5xx, never rolls a stack back and its
//! AssumeRole never refuses, so this is how the tests make the real SDK
//! client (and hawser behind it) meet `RequestLimitExceeded`,
//! `InternalFailure`, a rolled-back stack and a trust policy that does not
//! admit hawser. A rolled-back stack is moto's real stack with its
//! answers rewritten: DescribeStacks shows the rollback status, and
//! DescribeStackEvents leads with the failed resource, as CloudFormation's
//! would.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response, Router};
use tokio::task::JoinHandle;

// AWS's documented EC2 token buckets, shared with the benchmark's proxy.
// Its own unit tests run in bench/; compiled into a target that uses only
// part of this module (benches/), they and the rest may go unused.
#[allow(unused_imports, dead_code)]
#[path = "../../bench/src/ec2_rates.rs"]
mod ec2_rates;
mod stacks;
mod storm;
use stacks::{names_a_stack, rewrite, rewrite_listed, stack_fault, stack_id};
use storm::{quiet_hang_ups, truncated, HANG_UP};
pub use storm::{Storm, StormFaults};

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
    /// Action -> each request's SDK invocation id (the same on every
    /// attempt of one call) and attempt number, from the
    /// `amz-sdk-invocation-id` and `amz-sdk-request` headers.
    attempts: HashMap<String, Vec<(String, u32)>>,
    /// (action, parameter, value) -> how many requests for `action` whose
    /// form has `parameter=value` are still to be throttled.
    matching: HashMap<(String, String, String), u32>,
    /// Stack name -> how its answers are rewritten.
    stacks: HashMap<String, StackFault>,
    /// EC2's documented token buckets, once [`FaultProxy::at_ec2_rates`].
    ec2_rates: Option<ec2_rates::Buckets>,
    /// A storm on every action but STS's, while it lasts.
    storm: Option<Storm>,
    /// What the storm did: throttled, and answers lost after moto acted.
    storm_throttled: u32,
    storm_lost: u32,
    storm_dropped: u32,
    storm_hung_up: u32,
    /// Throttle every request but STS's signed with an access key other
    /// than this one: every account but hawser's own, whose credentials
    /// come from AssumeRole.
    throttle_all_but_key: Option<String>,
    /// Requests so throttled.
    others_throttled: u32,
    /// Stack id -> the failed create it was shown with: a stack whose
    /// create rolled back stays dead after the fault is healed, as on AWS,
    /// until it is deleted; a stack made after the heal is healthy.
    dead: HashMap<String, StackFault>,
}

/// A stack operation made to fail: moto's `from` status shows as `to`,
/// and the newest event is `resource` failing with `reason`.
#[derive(Clone)]
struct StackFault {
    from: &'static str,
    to: &'static str,
    event_status: &'static str,
    logical_id: String,
    resource_type: String,
    reason: String,
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
        quiet_hang_ups();
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

    /// Throttles the next `times` requests for `action` whose form has
    /// `parameter` = `value` (e.g. one VPC's `CreateVpcEndpoint`).
    pub fn throttle_matching(&self, action: &str, parameter: &str, value: &str, times: u32) {
        self.faults.lock().unwrap().matching.insert(
            (action.to_owned(), parameter.to_owned(), value.to_owned()),
            times,
        );
    }

    /// The SDK invocation id and attempt number of each request for
    /// `action` whose form has `parameter` = `value`, in arrival order.
    pub fn attempts_matching(
        &self,
        action: &str,
        parameter: &str,
        value: &str,
    ) -> Vec<(String, u32)> {
        let f = self.faults.lock().unwrap();
        let (Some(params), Some(attempts)) = (f.params.get(action), f.attempts.get(action)) else {
            return Vec::new();
        };
        params
            .iter()
            .zip(attempts)
            .filter(|(p, _)| p.get(parameter).map(String::as_str) == Some(value))
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Throttles (503 `RequestLimitExceeded`) every request but STS's that
    /// is signed with an access key other than `own_key`: the accounts
    /// hawser reaches through a namespace's role, not its own.
    pub fn throttle_other_accounts(&self, own_key: &str) {
        self.faults.lock().unwrap().throttle_all_but_key = Some(own_key.to_owned());
    }

    /// Requests [`Self::throttle_other_accounts`] throttled.
    pub fn others_throttled(&self) -> u32 {
        self.faults.lock().unwrap().others_throttled
    }

    /// Refuses every AssumeRole, as AWS does when the role's trust policy
    /// does not admit the caller (403 `AccessDenied`), until [`Self::heal`].
    pub fn deny_assume_role(&self) {
        self.fail("AssumeRole", ASSUME_ROLE_DENIED, u32::MAX);
    }

    /// Answers the next `times` requests for `action` with HTTP 500
    /// `InternalFailure`, as an AWS outage does.
    pub fn fail_500(&self, action: &str, times: u32) {
        self.fail(action, INTERNAL_FAILURE, times);
    }

    /// Makes stack `name`'s create look failed and rolled back: where moto
    /// says CREATE_COMPLETE, DescribeStacks says ROLLBACK_COMPLETE, and
    /// DescribeStackEvents leads with `resource` (logical id, type)
    /// CREATE_FAILED for `reason`. Every stack of that name made until
    /// [`Self::heal_stack`] is dead for good, as a rolled-back create is.
    pub fn fail_stack_create(&self, name: &str, resource: (&str, &str), reason: &str) {
        self.fail_stack(
            name,
            "CREATE_COMPLETE",
            "ROLLBACK_COMPLETE",
            "CREATE_FAILED",
            resource,
            reason,
        );
    }

    /// Makes stack `name`'s updates look rolled back: UPDATE_COMPLETE
    /// shows as UPDATE_ROLLBACK_COMPLETE, with `resource` UPDATE_FAILED
    /// for `reason`. Until [`Self::heal_stack`].
    pub fn fail_stack_update(&self, name: &str, resource: (&str, &str), reason: &str) {
        self.fail_stack(
            name,
            "UPDATE_COMPLETE",
            "UPDATE_ROLLBACK_COMPLETE",
            "UPDATE_FAILED",
            resource,
            reason,
        );
    }

    fn fail_stack(
        &self,
        name: &str,
        from: &'static str,
        to: &'static str,
        event_status: &'static str,
        (logical_id, resource_type): (&str, &str),
        reason: &str,
    ) {
        let fault = StackFault {
            from,
            to,
            event_status,
            logical_id: logical_id.to_owned(),
            resource_type: resource_type.to_owned(),
            reason: reason.to_owned(),
        };
        self.faults
            .lock()
            .unwrap()
            .stacks
            .insert(name.to_owned(), fault);
    }

    /// Starts `storm` on every action but STS's (hawser's identity and
    /// AssumeRole stay reliable, so the storm hits what it provisions).
    pub fn storm(&self, storm: Storm) {
        self.faults.lock().unwrap().storm = Some(storm);
    }

    /// (throttled, answers lost, answers cut off) by the storm so far.
    pub fn storm_faults(&self) -> StormFaults {
        let f = self.faults.lock().unwrap();
        StormFaults {
            throttled: f.storm_throttled,
            lost: f.storm_lost,
            cut_off: f.storm_dropped,
            hung_up: f.storm_hung_up,
        }
    }

    /// Shows stack `name` as moto has it again.
    pub fn heal_stack(&self, name: &str) {
        self.faults.lock().unwrap().stacks.remove(name);
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

    /// From now on, throttles every EC2 action as AWS's documented token
    /// buckets do (bench/src/ec2_rates.rs): one bucket per action, full
    /// at the start, a request beyond it answered 503
    /// `RequestLimitExceeded`.
    pub fn at_ec2_rates(&self) {
        self.faults.lock().unwrap().ec2_rates = Some(ec2_rates::Buckets::default());
    }

    /// What the EC2 buckets refused, by action, and the least time in
    /// which what they let through could have been.
    pub fn ec2_rates(&self) -> (BTreeMap<String, u64>, Duration) {
        let faults = self.faults.lock().unwrap();
        let buckets = faults.ec2_rates.as_ref().expect("at_ec2_rates");
        (buckets.throttled.clone(), buckets.minimum())
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

/// The SDK's invocation id and attempt number of a request: every attempt
/// of one call carries the same `amz-sdk-invocation-id`, and
/// `amz-sdk-request: attempt=N; max=M`.
fn sdk_attempt(headers: &HeaderMap) -> (String, u32) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let attempt = header("amz-sdk-request")
        .split(';')
        .find_map(|kv| kv.trim().strip_prefix("attempt=")?.parse().ok())
        .unwrap_or(0);
    (header("amz-sdk-invocation-id"), attempt)
}

/// The access key a SigV4 request is signed with: the
/// `Credential=<key>/<date>/...` of its Authorization header.
fn access_key(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_owned)
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

const INTERNAL_FAILURE: Canned = Canned {
    status: 500,
    body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>Receiver</Type>\
<Code>InternalFailure</Code><Message>We encountered an internal error. Please try again.</Message>\
</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>",
};

const ASSUME_ROLE_DENIED: Canned = Canned {
    status: 403,
    body: "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
<Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/moto \
is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>e2e</RequestId>\
</ErrorResponse>",
};

fn answer(canned: Canned) -> Response {
    Response::builder()
        .status(canned.status)
        .header("content-type", "text/xml")
        .body(canned.body.into())
        .unwrap()
}

async fn forward(
    State(shared): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut stack_rewrite = None;
    let mut lose_answer = false;
    let mut drop_connection = false;
    let mut hang_up = false;
    let action_name = action(&body);
    let lists_stacks = action_name.as_deref() == Some("DescribeStacks") && !names_a_stack(&body);
    let storm = {
        let f = shared.faults.lock().unwrap();
        let sts = matches!(
            action_name.as_deref(),
            Some("AssumeRole" | "GetCallerIdentity")
        );
        f.storm.filter(|s| !sts && Instant::now() < s.until)
    };
    {
        let sts = matches!(
            action_name.as_deref(),
            Some("AssumeRole" | "GetCallerIdentity")
        );
        let mut faults = shared.faults.lock().unwrap();
        let key = access_key(&headers);
        if let Some(own) = faults.throttle_all_but_key.as_deref() {
            if !sts && key.as_deref() != Some(own) {
                faults.others_throttled += 1;
                return answer(THROTTLED);
            }
        }
    }
    if let Some(storm) = storm {
        tokio::time::sleep(storm.latency).await;
        let mut faults = shared.faults.lock().unwrap();
        if fastrand::f64() < storm.throttle {
            faults.storm_throttled += 1;
            return answer(THROTTLED);
        }
        lose_answer = fastrand::f64() < storm.lose_answer;
        drop_connection = !lose_answer && fastrand::f64() < storm.drop_connection;
        hang_up = !lose_answer && !drop_connection && fastrand::f64() < storm.hang_up;
    }
    if let Some(action) = action_name.clone() {
        let mut faults = shared.faults.lock().unwrap();
        faults
            .seen
            .entry(action.clone())
            .or_default()
            .push(Instant::now());
        let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        faults
            .attempts
            .entry(action.clone())
            .or_default()
            .push(sdk_attempt(&headers));
        let matched = faults
            .matching
            .iter()
            .find(|((a, k, v), left)| *a == action && **left > 0 && form.get(k) == Some(v))
            .map(|(key, _)| key.clone());
        let ec2 = form.get("Version").map(String::as_str) == Some("2016-11-15");
        let filtered = ec2_rates::is_filtered(form.keys().map(String::as_str));
        faults.params.entry(action.clone()).or_default().push(form);
        if let Some(buckets) = faults.ec2_rates.as_mut().filter(|_| ec2) {
            let limit = ec2_rates::limit_of(&action, filtered);
            if !buckets.take(&action, limit, Instant::now()) {
                return answer(THROTTLED);
            }
        }
        if let Some(key) = matched {
            if let Some(left) = faults.matching.get_mut(&key) {
                *left -= 1;
            }
            *faults.given.entry(action).or_default() += 1;
            return answer(THROTTLED);
        }
        stack_rewrite = stack_fault(&faults, &action, &body).map(|f| (action.clone(), f));
        if let Some((canned, left)) = faults.pending.get_mut(&action).filter(|(_, n)| *n > 0) {
            let canned = *canned;
            *left -= 1;
            *faults.given.entry(action).or_default() += 1;
            return answer(canned);
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
    let body = upstream.bytes().await.unwrap_or_default();
    if lose_answer {
        shared.faults.lock().unwrap().storm_lost += 1;
        return answer(INTERNAL_FAILURE);
    }
    if drop_connection {
        shared.faults.lock().unwrap().storm_dropped += 1;
        return response.body(truncated(body)).unwrap();
    }
    if hang_up {
        shared.faults.lock().unwrap().storm_hung_up += 1;
        // The handler runs inside the connection's task (axum::serve adds
        // no panic catcher): unwinding it drops the socket before a byte of
        // the answer is written, as a connection lost after AWS acted.
        std::panic::panic_any(HANG_UP);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let id = stack_id(&text).map(str::to_owned);
    let describes = matches!(
        action_name.as_deref(),
        Some("DescribeStacks" | "DescribeStackEvents")
    );
    // A listing is rewritten stack by stack (rewrite_listed), never as a
    // whole after its first stack.
    let fault = match (&action_name, id) {
        _ if lists_stacks => None,
        (Some(action), Some(id)) if describes => {
            let mut faults = shared.faults.lock().unwrap();
            match stack_rewrite.take() {
                Some((_, fault)) if fault.from == "CREATE_COMPLETE" => {
                    faults.dead.insert(id, fault.clone());
                    Some((action.clone(), fault))
                }
                Some(marked) => Some(marked),
                None => faults.dead.get(&id).map(|f| (action.clone(), f.clone())),
            }
        }
        _ => stack_rewrite,
    };
    let body = match &fault {
        Some((action, fault)) => rewrite(action, &text, fault).into(),
        None if lists_stacks => rewrite_listed(&mut shared.faults.lock().unwrap(), &text).into(),
        None => body,
    };
    response.body(body.into()).unwrap()
}
