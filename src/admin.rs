//! The plain-HTTP admin port: `/metrics`, `/livez`, `/readyz`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Router};

use crate::metrics::Metrics;

/// Named readiness checks; `/readyz` is 200 only when all have passed.
/// Each starts false, so a replica is not ready until it has proven itself.
#[derive(Default)]
pub struct Readiness {
    checks: Mutex<BTreeMap<&'static str, bool>>,
}

impl Readiness {
    pub fn require(&self, name: &'static str) {
        self.lock().insert(name, false);
    }

    pub fn set(&self, name: &'static str, ok: bool) {
        self.lock().insert(name, ok);
    }

    pub fn is_ready(&self) -> bool {
        self.lock().values().all(|ok| *ok)
    }

    /// One line per check, e.g. `[+]namespace-cache ok`, like the apiserver's.
    pub fn report(&self) -> String {
        self.lock()
            .iter()
            .map(|(name, ok)| {
                if *ok {
                    format!("[+]{name} ok\n")
                } else {
                    format!("[-]{name} not ready\n")
                }
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, bool>> {
        self.checks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

pub fn router(metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState { metrics, readiness })
}

async fn metrics_handler(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    let status = if s.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, s.readiness.report())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let resp = router
            .clone()
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_waits_for_every_check() {
        let readiness = Arc::new(Readiness::default());
        readiness.require("namespace-cache");
        let router = router(Arc::new(Metrics::new().unwrap()), readiness.clone());
        assert_eq!(
            get(&router, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "[-]namespace-cache not ready\n".into()
            )
        );
        readiness.set("namespace-cache", true);
        assert_eq!(
            get(&router, "/readyz").await,
            (StatusCode::OK, "[+]namespace-cache ok\n".into())
        );
        assert_eq!(get(&router, "/livez").await.0, StatusCode::OK);
        assert!(get(&router, "/metrics")
            .await
            .1
            .contains("hawser_admission_duration_seconds"));
    }
}
