//! Operator endpoints: pausing and resuming a job kind in every worker, the dead letters
//! (list, retry, purge) and the queue statistics. Each calls the producer library as the
//! CLI's `queue`, `dead` and `stats` commands do.

use super::auth::Operator;
use super::errors::{ApiError, ErrorBody, ErrorCode};
use super::jobs::{body_bytes, kind_of};
use super::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use onboard_shared::jobs::JobKind;
use serde::{Deserialize, Serialize};

/// The answer to a queue pause or resume.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueControlBody {
    /// The kind.
    pub kind: String,
    /// `paused` or `running`.
    pub state: String,
    /// False when it was in that state already.
    pub changed: bool,
}

/// Pause or resume claiming a job kind in every worker.
#[utoipa::path(post, path = "/v1/queues/{kind}/{action}", tag = "operator",
    params(("kind" = String, Path, description = "The job kind"),
           ("action" = String, Path, description = "pause or resume")),
    responses((status = 200, body = QueueControlBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn queue(
    State(state): State<AppState>,
    _operator: Operator,
    Path((kind, action)): Path<(String, String)>,
) -> Result<Json<QueueControlBody>, ApiError> {
    let kind = kind_of(&kind)?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "the action is pause or resume",
            ))
        }
    };
    let changed = state.producer.store().pause_kind(kind, paused).await?;
    Ok(Json(QueueControlBody {
        kind: kind.as_str().into(),
        state: if paused { "paused" } else { "running" }.into(),
        changed,
    }))
}

/// `GET /v1/dead-letters` query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeadQuery {
    /// One kind (default: every kind).
    pub kind: Option<String>,
    /// At most this many per kind (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// Dead jobs, oldest first, per kind.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "operator", params(DeadQuery),
    responses((status = 200, body = [Object]), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_list(
    State(state): State<AppState>,
    _operator: Operator,
    Query(q): Query<DeadQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let kinds: Vec<JobKind> = match q.kind.as_deref() {
        Some(k) => vec![kind_of(k)?],
        None => JobKind::ALL.to_vec(),
    };
    let limit = q.limit.unwrap_or(100).min(10_000);
    let mut out = Vec::new();
    for kind in kinds {
        for s in state.producer.dead_letters(kind, limit).await? {
            out.push(
                serde_json::to_value(s)
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?,
            );
        }
    }
    Ok(Json(out))
}

/// Dead jobs to retry or purge.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct IdsBody {
    /// Job ids.
    #[schema(min_items = 1)]
    pub ids: Vec<String>,
}

/// Per job, its state now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetriedBody {
    /// Each id with the state it is in now.
    pub jobs: Vec<RetriedJob>,
}

/// One retried job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetriedJob {
    /// The job.
    pub id: String,
    /// Its state now.
    pub state: String,
}

fn ids(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Vec<String>, ApiError> {
    let body = body_bytes(body, limit)?;
    let ids: IdsBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid("ids", format!("the body must be {{\"ids\": [...]}}: {e}"))
    })?;
    if ids.ids.is_empty() {
        return Err(ApiError::invalid("ids", "ids: at least one job id"));
    }
    Ok(ids.ids)
}

/// Bring dead jobs back to their queue; stops at the first that cannot be retried.
#[utoipa::path(post, path = "/v1/dead-letters/retry", tag = "operator", request_body = IdsBody,
    responses((status = 200, body = RetriedBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_retry(
    State(state): State<AppState>,
    _operator: Operator,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RetriedBody>, ApiError> {
    let ids = ids(body, state.api.body_limit_bytes)?;
    let states = state.producer.retry_dead(&ids).await?;
    let jobs = ids
        .into_iter()
        .zip(states)
        .map(|(id, s)| RetriedJob {
            id,
            state: s.as_str().into(),
        })
        .collect();
    Ok(Json(RetriedBody { jobs }))
}

/// The answer to a purge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurgedBody {
    /// The jobs deleted for good.
    pub purged: Vec<String>,
}

/// Delete dead jobs for good; stops at the first that is not dead.
#[utoipa::path(post, path = "/v1/dead-letters/purge", tag = "operator", request_body = IdsBody,
    responses((status = 200, body = PurgedBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_purge(
    State(state): State<AppState>,
    _operator: Operator,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PurgedBody>, ApiError> {
    let ids = ids(body, state.api.body_limit_bytes)?;
    state.producer.purge_dead(&ids).await?;
    Ok(Json(PurgedBody { purged: ids }))
}

/// Jobs per kind per state.
#[utoipa::path(get, path = "/v1/stats", tag = "operator",
    responses((status = 200, body = [Object]), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    state
        .producer
        .stats()
        .await?
        .into_iter()
        .map(|s| {
            serde_json::to_value(s).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
}
