//! `/healthz` (the process answers) and `/readyz` (and Redis answers too). No token.

use super::errors::{ApiError, ErrorBody};
use super::AppState;
use axum::extract::State;
use axum::Json;

/// The answer of both probes.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The process is up and Redis answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.producer.store().batches(1).await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}
