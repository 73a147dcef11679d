//! Batches: `POST /v1/batches` uploads NDJSON (one job per line, as a `backfill` JSON Lines
//! file), streamed to a private spool file and validated whole by the backfill passes
//! before anything is enqueued, as one batch in the bulk lane labelled with the token's
//! name. `GET /v1/batches/{id}` reads one; `pause`, `resume` and `cancel` steer it
//! (operator role).

use super::auth::{Caller, Operator};
use super::errors::{ApiError, ErrorBody, ErrorCode};
use super::AppState;
use crate::cli::backfill::upload::{upload, Upload, UploadError, Uploaded};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use futures::StreamExt;
use onboard_producer::backfill::{FileFormat, RowKind};
use onboard_shared::config::ApiRole;
use onboard_shared::queue::BatchState;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// `POST /v1/batches` query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// The kind of every line (create-customer, bind-devices, create-account,
    /// register-user, onboard-customer); else each line's `kind` member.
    pub kind: Option<String>,
}

/// The answer to a batch control.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchControlBody {
    /// The batch.
    pub batch: String,
    /// Its state now: `paused`, `active` or `cancelled`.
    pub state: String,
    /// On cancel: the jobs that had not started and now never will.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_jobs: Option<u64>,
}

/// Upload a batch.
#[utoipa::path(post, path = "/v1/batches", tag = "batches", params(UploadQuery),
    request_body(content = String, content_type = "text/plain",
                 description = "NDJSON: one JSON object per line (any content type is read as such)"),
    responses((status = 202, body = Uploaded), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(
            k.parse::<RowKind>()
                .map_err(|rule| ApiError::invalid("kind", format!("kind: {rule}")))?,
        ),
    };
    let spool = spool(body, state.api.batch_limit_bytes).await?;
    let up = Upload {
        path: spool.path().to_path_buf(),
        format: FileFormat::JsonLines,
        kind,
        label: caller.0.name.clone(),
        allowed: caller.0.kinds.clone(),
        // Its jobs are recorded as the token's (see `owners`).
        keep_ids: true,
    };
    match upload(&state.producer, up).await {
        Ok(done) => {
            state
                .owners
                .record(&done.ids, &caller.0.name)
                .await
                .map_err(|e| {
                    let batch = done.batch.as_deref().unwrap_or("-");
                    ApiError::new(
                        ErrorCode::Unavailable,
                        format!("batch {batch} was enqueued but its jobs were not recorded as this token's: {e}"),
                    )
                })?;
            Ok((StatusCode::ACCEPTED, Json(done)))
        }
        Err(UploadError::Empty) => Err(ApiError::invalid("-", "the body holds no line")),
        Err(UploadError::Invalid(errors)) => Err(ApiError::lines(
            ErrorCode::Invalid,
            format!("{} invalid line(s); nothing was enqueued", errors.len()),
            errors,
        )),
        Err(UploadError::Forbidden(errors)) => Err(ApiError::lines(
            ErrorCode::Forbidden,
            format!(
                "{} line(s) of kinds this token may not enqueue; nothing was enqueued",
                errors.len()
            ),
            errors,
        )),
        Err(UploadError::Changed(errors)) => Err(ApiError::lines(
            ErrorCode::Conflict,
            format!(
                "{} line(s) changed since an earlier upload enqueued them; nothing was enqueued",
                errors.len()
            ),
            errors,
        )),
        Err(UploadError::Failed(f)) => Err(f.into()),
    }
}

/// Streams the body into a private temporary file, 413 past `limit` bytes.
async fn spool(body: Body, limit: u64) -> Result<tempfile::NamedTempFile, ApiError> {
    let internal = |e: std::io::Error| ApiError::new(ErrorCode::Internal, format!("spool: {e}"));
    let file = tempfile::NamedTempFile::new().map_err(internal)?;
    let mut out = std::io::BufWriter::new(file.reopen().map_err(internal)?);
    let mut stream = body.into_data_stream();
    let mut seen: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid("-", format!("reading the body: {e}")))?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(ApiError::too_large(limit));
        }
        // Local disk writes of at most a chunk: short enough for the async thread.
        out.write_all(&chunk).map_err(internal)?;
    }
    out.flush().map_err(internal)?;
    Ok(file)
}

/// One batch's state and counts.
#[utoipa::path(get, path = "/v1/batches/{id}", tag = "batches",
    params(("id" = String, Path, description = "The batch id")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = state.producer.store().batch_status(&id).await?;
    // An app token sees the batches it uploaded (labelled with its name).
    if caller.0.role != ApiRole::Operator && status.label != caller.0.name {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no batch {id} uploaded with this token"),
        ));
    }
    serde_json::to_value(status)
        .map(Json)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

/// What to do to a batch.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchAction {
    /// Stop claiming its jobs; they stay queued.
    Pause,
    /// Claim its jobs again.
    Resume,
    /// End its jobs that have not started and free their keys.
    Cancel,
}

/// Pause, resume or cancel a batch.
#[utoipa::path(post, path = "/v1/batches/{id}/{action}", tag = "batches",
    params(("id" = String, Path, description = "The batch id"),
           ("action" = BatchAction, Path, description = "pause, resume or cancel")),
    responses((status = 200, body = BatchControlBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn control(
    State(state): State<AppState>,
    _operator: Operator,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<BatchControlBody>, ApiError> {
    let store = state.producer.store();
    let action: BatchAction = serde_json::from_value(serde_json::Value::String(action))
        .map_err(|_| ApiError::new(ErrorCode::NotFound, "the action is pause, resume or cancel"))?;
    // The batch must exist: 404 rather than a state set on nothing.
    store.batch_status(&id).await?;
    let (state_now, cancelled_jobs) = match action {
        BatchAction::Pause => {
            store.set_batch_state(&id, BatchState::Paused).await?;
            ("paused", None)
        }
        BatchAction::Resume => {
            store.set_batch_state(&id, BatchState::Active).await?;
            ("active", None)
        }
        BatchAction::Cancel => ("cancelled", Some(store.cancel_batch(&id).await?)),
    };
    Ok(Json(BatchControlBody {
        batch: id,
        state: state_now.into(),
        cancelled_jobs,
    }))
}
