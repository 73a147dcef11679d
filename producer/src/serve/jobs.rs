//! One job at a time: `POST /v1/jobs/{kind}` (live lane, the token's name as the source),
//! `GET /v1/jobs/{id}`, and the verify-code flow (`verify-code`, `resend-code`).
//!
//! A body is parsed, normalised and validated by the backfill module's JSON rules, so a
//! field breaks the same rule with the same message whichever way it came in.

use super::auth::Caller;
use super::errors::{ApiError, ErrorBody, ErrorCode};
use super::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use onboard_producer::backfill::{parse_object, RowKind};
use onboard_producer::Work;
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{EnqueueOptions, Lane};
use onboard_shared::secret::Secret;
use serde::{Deserialize, Serialize};

/// The answer to an enqueue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnqueuedBody {
    /// The job's id (the first job's, when the idempotency key was used before).
    pub id: String,
    /// True when the key was used before with the same body: nothing new was enqueued.
    pub duplicate: bool,
}

/// A verify code.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CodeBody {
    /// The 6-digit code the customer received.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

/// The answer to verify-code and resend-code.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuedBody {
    /// The job.
    pub job_id: String,
    /// `queued`.
    pub state: String,
}

/// The body as bytes, a body over the limit as 413.
pub fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit as u64)
        } else {
            ApiError::new(ErrorCode::Invalid, rejection.body_text())
        }
    })
}

/// The kind named in a path, 404 when there is none of that name.
pub fn kind_of(name: &str) -> Result<JobKind, ApiError> {
    name.parse::<JobKind>().map_err(|_| {
        let kinds: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no job kind of that name (expected one of: {})",
                kinds.join(", ")
            ),
        )
    })
}

/// Enqueue one job.
#[utoipa::path(post, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The kind to enqueue: create-customer, bind-devices, create-account or register-user"),
           ("Idempotency-Key" = Option<String>, Header, description = "A repeated key with the same body answers 200 with the first job's id")),
    request_body(content = Object, description = "The job's fields (see the README)"),
    responses((status = 202, body = EnqueuedBody, description = "Enqueued"),
              (status = 200, body = EnqueuedBody, description = "The key was used before with the same body"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn enqueue(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<EnqueuedBody>), ApiError> {
    let kind = kind_of(&kind)?;
    caller.may_enqueue(kind)?;
    let body = body_bytes(body, state.api.body_limit_bytes)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("-", "the body is not valid UTF-8"))?;
    let job = match parse_object(text, RowKind::Job(kind)) {
        Ok(Work::Job(job)) => job,
        Ok(Work::OnboardCustomer { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "a job kind parsed as two jobs",
            ))
        }
        Err(e) => {
            let message = format!("invalid {kind} job: {}: {}", e.field, e.rule);
            return Err(ApiError::invalid(e.field, message));
        }
    };
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 255 => Some(format!("http:{}:{k}", caller.0.name)),
            _ => {
                return Err(ApiError::invalid(
                    "Idempotency-Key",
                    "Idempotency-Key: must be 1 to 255 visible ASCII characters",
                ))
            }
        },
    };
    let opts = EnqueueOptions {
        idempotency_key: key,
        lane: Some(Lane::Live),
        source: Some(caller.0.name.clone()),
        ..Default::default()
    };
    let done = state.producer.enqueue(&job, &opts).await?;
    if let Err(e) = state
        .owners
        .record(std::slice::from_ref(&done.id), &caller.0.name)
        .await
    {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "job {} was enqueued but not recorded as this token's ({e}); send the request \
                 again with the same Idempotency-Key",
                done.id
            ),
        ));
    }
    let status = if done.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(EnqueuedBody {
            id: done.id,
            duplicate: done.duplicate,
        }),
    ))
}

/// One job's status (secret result fields redacted).
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = Object, description = "The job's status"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.owners.check(&caller, &id).await?;
    let status = state.producer.status(&id, false).await?;
    serde_json::to_value(status)
        .map(Json)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

/// Supply the verify code a create-account job awaits.
#[utoipa::path(post, path = "/v1/jobs/{id}/verify-code", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    request_body = CodeBody,
    responses((status = 200, body = QueuedBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn verify_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<QueuedBody>, ApiError> {
    state.owners.check(&caller, &id).await?;
    let body = body_bytes(body, state.api.body_limit_bytes)?;
    // Never quote the body: it holds the code.
    let code: CodeBody = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("code", "the body must be {\"code\": \"<6 digits>\"}"))?;
    state
        .producer
        .supply_code(&id, &Secret::new(code.code))
        .await?;
    Ok(Json(QueuedBody {
        job_id: id,
        state: "queued".into(),
    }))
}

/// Send a create-account job back through phase 1 (a new code is texted).
#[utoipa::path(post, path = "/v1/jobs/{id}/resend-code", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = QueuedBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resend_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<QueuedBody>, ApiError> {
    state.owners.check(&caller, &id).await?;
    state.producer.resend_code(&id).await?;
    Ok(Json(QueuedBody {
        job_id: id,
        state: "queued".into(),
    }))
}
