//! An in-process stand-in for the Kubernetes API, for tests below e2e:
//! a `kube::Client` whose requests are answered from an in-memory object
//! store, with the semantics the controllers rely on.
//!
//! - GET of an object or a list (with a `labelSelector` of `k=v` terms and
//!   a `fieldSelector` of `metadata.name=<name>`), cluster-wide lists of
//!   namespaced kinds included;
//! - POST (409 when the name is taken; `generateName` honoured);
//! - PATCH: JSON patch (a failed `test` is a 422; `test` of null passes
//!   on a missing member, as the apiserver's does), merge patch (a stale
//!   `metadata.resourceVersion` is a 409), and server-side apply: a merge
//!   that creates the object when absent and drops the map keys the same
//!   field manager applied last time and no longer applies;
//! - DELETE: an object with finalizers gets a `deletionTimestamp` and
//!   goes once a write leaves its finalizers empty, as the apiserver does;
//! - every write bumps `metadata.resourceVersion`;
//! - faults: the next N PATCHes answered 409, or no answer at all.
//!
//! Every request is logged (`METHOD path`) for assertions.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex, MutexGuard},
};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

#[derive(Default)]
pub struct State {
    /// Objects by path (`/api/v1/namespaces/a/services/b`).
    pub objects: BTreeMap<String, Value>,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
    /// PATCHes still to answer 409 (`u32::MAX`: always).
    pub conflicts: u32,
    /// Answer nothing, ever.
    pub hang: bool,
    /// The last configuration applied per (path, field manager).
    applied: BTreeMap<(String, String), Value>,
    version: u64,
}

#[derive(Clone, Default)]
pub struct ApiServer {
    state: Arc<Mutex<State>>,
}

type Response = http::Response<Full<Bytes>>;

/// Whether the object at `key` is in the list at `path`: directly under
/// it, or (a cluster-wide list of a namespaced kind, `/api/v1/services`)
/// at `<group>/namespaces/<ns>/<resource>/<name>`.
fn in_list(path: &str, key: &str) -> bool {
    if let Some(rest) = key.strip_prefix(path).and_then(|r| r.strip_prefix('/')) {
        return !rest.contains('/');
    }
    let Some((base, resource)) = path.rsplit_once('/') else {
        return false;
    };
    if path.contains("/namespaces/") {
        return false;
    }
    let Some(rest) = key
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix("/namespaces/"))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() == 3 && parts[1] == resource
}

fn respond(status: u16, body: &Value) -> Response {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": message, "reason": reason, "code": code}),
    )
}

/// Whether `path` names one object (`…/services/NAME`) rather than a
/// collection.
fn is_object(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/RES/NAME, /api/v1/namespaces/NS/RES/NAME,
    // /apis/G/V/RES/NAME, /apis/G/V/namespaces/NS/RES/NAME
    let after_version = match segments.first() {
        Some(&"api") => &segments[2..],
        Some(&"apis") => &segments[3..],
        _ => return false,
    };
    match after_version {
        ["namespaces", _] => true,
        ["namespaces", _, _] => false,
        ["namespaces", _, _, _] => true,
        [_, _] => true,
        _ => false,
    }
}

fn matches_selector(obj: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

fn query(uri: &http::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ApiServer {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client whose every request this stand-in answers.
    pub fn client(&self) -> kube::Client {
        let server = self.clone();
        let service = tower::service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.serve(req).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores `obj` at `path`, as a test's own setup.
    pub fn put(&self, path: &str, mut obj: Value) {
        let mut s = self.lock();
        s.version += 1;
        obj["metadata"]["resourceVersion"] = json!(s.version.to_string());
        s.objects.insert(path.to_owned(), obj);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Edits the object at `path` in place, as another client would.
    pub fn edit(&self, path: &str, f: impl FnOnce(&mut Value)) {
        let mut s = self.lock();
        s.version += 1;
        let version = s.version.to_string();
        let obj = s.objects.get_mut(path).expect("the object to edit");
        f(obj);
        obj["metadata"]["resourceVersion"] = json!(version);
    }

    /// Asks for the deletion of the object at `path`, as `kubectl delete`.
    pub fn delete(&self, path: &str) {
        let mut s = self.lock();
        delete(&mut s, path);
    }

    /// Whether the object at `path` carries `finalizer`.
    pub fn finalized(&self, path: &str, finalizer: &str) -> bool {
        self.get(path).is_some_and(|obj| {
            obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == finalizer))
        })
    }

    /// Annotation `key` of the object at `path`.
    pub fn annotation(&self, path: &str, key: &str) -> Option<String> {
        let obj = self.get(path)?;
        obj["metadata"]["annotations"][key]
            .as_str()
            .map(str::to_owned)
    }

    /// The object at `path` as a controller's watch sees it.
    pub fn meta<K>(&self, path: &str) -> kube::core::PartialObjectMeta<K>
    where
        K: kube::Resource,
    {
        let obj = self.get(path).unwrap_or_else(|| panic!("{path} exists"));
        serde_json::from_value(obj).expect("object metadata")
    }

    /// The objects under `prefix` (a collection path).
    pub fn list(&self, prefix: &str) -> Vec<Value> {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// (type, reason, note) of the `events.k8s.io/v1` Events in
    /// `namespace` about an object named `name`.
    pub fn events(&self, namespace: &str, name: &str) -> Vec<(String, String, String)> {
        self.list(&format!(
            "/apis/events.k8s.io/v1/namespaces/{namespace}/events"
        ))
        .into_iter()
        .filter(|e| e["regarding"]["name"].as_str() == Some(name))
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (field("type"), field("reason"), field("note"))
        })
        .collect()
    }

    /// The reasons of those Events.
    pub fn reasons(&self, namespace: &str, name: &str) -> Vec<String> {
        self.events(namespace, name)
            .into_iter()
            .map(|(_, reason, _)| reason)
            .collect()
    }

    /// Requests whose `METHOD path` starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.starts_with(prefix))
            .cloned()
            .collect()
    }

    async fn serve(&self, req: http::Request<kube::client::Body>) -> Response {
        if self.lock().hang {
            futures::future::pending::<()>().await;
        }
        let method = req.method().clone();
        let uri = req.uri().clone();
        let path = uri.path().trim_end_matches('/').to_owned();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut s = self.lock();
        s.requests.push(format!("{method} {path}"));
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        match method {
            http::Method::GET if is_object(&path) => match s.objects.get(&path) {
                Some(obj) => respond(200, obj),
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            http::Method::GET => {
                let selector = query(&uri, "labelSelector");
                // fieldSelector: only `metadata.name=<name>` is understood.
                let name = query(&uri, "fieldSelector")
                    .and_then(|f| f.strip_prefix("metadata.name=").map(str::to_owned));
                let items: Vec<Value> = s
                    .objects
                    .iter()
                    .filter(|(k, _)| in_list(&path, k))
                    .map(|(_, v)| v)
                    .filter(|v| matches_selector(v, selector.as_deref()))
                    .filter(|v| name.is_none() || v["metadata"]["name"].as_str() == name.as_deref())
                    .cloned()
                    .collect();
                let version = s.version.to_string();
                respond(
                    200,
                    &json!({"kind": "List", "apiVersion": "v1",
                        "metadata": {"resourceVersion": version}, "items": items}),
                )
            }
            http::Method::POST => {
                let mut obj = body;
                let name = match obj["metadata"]["name"].as_str() {
                    Some(n) => n.to_owned(),
                    None => {
                        let prefix = obj["metadata"]["generateName"].as_str().unwrap_or("x-");
                        format!("{prefix}{:05}", s.version + 1)
                    }
                };
                obj["metadata"]["name"] = json!(name);
                let key = format!("{path}/{name}");
                if s.objects.contains_key(&key) {
                    return status(409, "AlreadyExists", &format!("{key} already exists"));
                }
                s.version += 1;
                obj["metadata"]["resourceVersion"] = json!(s.version.to_string());
                obj["metadata"]["uid"] = json!(format!("uid-{}", s.version));
                s.objects.insert(key, obj.clone());
                respond(201, &obj)
            }
            http::Method::PATCH => {
                if s.conflicts > 0 {
                    if s.conflicts != u32::MAX {
                        s.conflicts -= 1;
                    }
                    return status(409, "Conflict", "the object has been modified");
                }
                let manager = query(&uri, "fieldManager").unwrap_or_default();
                patch(&mut s, &path, &content_type, &manager, body)
            }
            http::Method::DELETE => match delete(&mut s, &path) {
                Some(obj) => respond(200, &obj),
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            _ => status(405, "MethodNotAllowed", "not supported by the stand-in"),
        }
    }
}

fn patch(s: &mut State, path: &str, content_type: &str, manager: &str, body: Value) -> Response {
    let current = s.objects.get(path).cloned();
    let mut obj = match (current, content_type) {
        (Some(obj), _) => obj,
        (None, t) if t.starts_with("application/apply-patch") => body.clone(),
        (None, _) => return status(404, "NotFound", &format!("{path} not found")),
    };
    if content_type.starts_with("application/json-patch") {
        let ops: json_patch::Patch = match serde_json::from_value(body) {
            Ok(p) => p,
            Err(e) => return status(400, "BadRequest", &e.to_string()),
        };
        // As the apiserver's JSON patch: `test` of null passes on a
        // missing member.
        let ops = json_patch::Patch(
            ops.0
                .into_iter()
                .filter(|op| match op {
                    json_patch::PatchOperation::Test(t) => {
                        !(t.value.is_null() && obj.pointer(t.path.as_str()).is_none())
                    }
                    _ => true,
                })
                .collect(),
        );
        if let Err(e) = json_patch::patch(&mut obj, &ops) {
            return status(422, "Invalid", &e.to_string());
        }
    } else if content_type.starts_with("application/apply-patch") {
        let key = (path.to_owned(), manager.to_owned());
        if let Some(before) = s.applied.get(&key) {
            prune(&mut obj, before, &body);
        }
        json_patch::merge(&mut obj, &body);
        s.applied.insert(key, body);
    } else {
        let expected = body["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned);
        if let Some(expected) = expected {
            if obj["metadata"]["resourceVersion"].as_str() != Some(expected.as_str()) {
                return status(409, "Conflict", "the object has been modified");
            }
        }
        json_patch::merge(&mut obj, &body);
    }
    s.version += 1;
    obj["metadata"]["resourceVersion"] = json!(s.version.to_string());
    if obj["metadata"]["uid"].is_null() {
        obj["metadata"]["uid"] = json!(format!("uid-{}", s.version));
    }
    let finalizers_empty = obj["metadata"]["finalizers"]
        .as_array()
        .is_none_or(|f| f.is_empty());
    if !obj["metadata"]["deletionTimestamp"].is_null() && finalizers_empty {
        s.objects.remove(path);
    } else {
        s.objects.insert(path.to_owned(), obj.clone());
    }
    respond(200, &obj)
}

/// Removes from `obj` the map keys `before` applied and `now` does not.
fn prune(obj: &mut Value, before: &Value, now: &Value) {
    let (Some(before), Some(obj)) = (before.as_object(), obj.as_object_mut()) else {
        return;
    };
    for (key, old) in before {
        match now.get(key) {
            None => {
                obj.remove(key);
            }
            Some(new) => {
                if let Some(child) = obj.get_mut(key) {
                    prune(child, old, new);
                }
            }
        }
    }
}

/// Deletes the object at `path`, or marks it deleting while it has
/// finalizers.
fn delete(s: &mut State, path: &str) -> Option<Value> {
    let obj = s.objects.get_mut(path)?;
    let finalized = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if finalized {
        obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let obj = obj.clone();
        s.version += 1;
        return Some(obj);
    }
    s.objects.remove(path)
}
