//! The worker's HTTP listener: `/metrics` (Prometheus), `/healthz` (alive) and `/readyz`
//! (every provider's queues reachable in Redis, on a cluster too; workers running and housekeeping not failing; 503 otherwise).

use crate::sweeper::SweeperHealth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use onboard_shared::queue::JobStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the readiness probe waits for Redis.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Renders the metrics.
    pub metrics: PrometheusHandle,
    /// For the readiness ping.
    pub store: JobStore,
    /// False once shutdown began.
    pub running: Arc<AtomicBool>,
    /// Whether housekeeping keeps failing.
    pub sweeper: Arc<SweeperHealth>,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

async fn metrics(State(s): State<HttpState>) -> String {
    s.metrics.render()
}

async fn ready(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    if !s.running.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match s.store.probe(PROBE_TIMEOUT).await {
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "redis unreachable or unusable (see the log)\n",
            )
        }
        Ok(_) if s.sweeper.failing() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "housekeeping failing (see onboard_sweeper_errors_total and the log)\n",
        ),
        Ok(_) => (StatusCode::OK, "ready\n"),
    }
}
