//! Every error the HTTP API answers, in one shape:
//! `{"error": {"code", "message", "field"}}`, plus `first_id` on an idempotency conflict
//! and `errors` (every bad line, field and rule) on an invalid batch. Messages are the
//! CLI's; none holds a secret (validation rules never quote a value).

use crate::cli::Failure;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use onboard_producer::backfill::RowError;
use onboard_producer::ProducerError;
use onboard_shared::queue::QueueError;
use serde::Serialize;

/// The machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no bearer token, or one that is not configured.
    Unauthenticated,
    /// 403: the token's role or kinds do not allow this.
    Forbidden,
    /// 404: no such job, batch, kind or route.
    NotFound,
    /// 409: an idempotency key used with another body, or a job in the wrong state.
    Conflict,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 422: a field broke a rule (or the body is not what the endpoint takes).
    Invalid,
    /// 429: over the token's request rate; see `Retry-After`.
    RateLimited,
    /// 503: Redis is unreachable.
    Unavailable,
    /// 500: something that should not happen.
    Internal,
}

/// One bad line of a batch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LineError {
    /// The 1-based line.
    pub line: u64,
    /// The first bad field (`-` for the line as a whole).
    pub field: String,
    /// The rule it broke.
    pub rule: String,
}

impl From<RowError> for LineError {
    fn from(e: RowError) -> Self {
        LineError {
            line: e.line,
            field: e.field,
            rule: e.rule,
        }
    }
}

/// The `error` member of every error body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// The job that holds the idempotency key, on a conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_id: Option<String>,
    /// Every bad line of a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<LineError>>,
}

/// Every error body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An API error: a status, a code and the body's details.
#[derive(Debug, thiserror::Error)]
#[error("{}", .detail.message)]
pub struct ApiError {
    status: StatusCode,
    detail: Box<ErrorDetail>,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            detail: Box::new(ErrorDetail {
                code,
                message: message.into(),
                field: None,
                first_id: None,
                errors: None,
            }),
            retry_after_secs: None,
        }
    }

    /// 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(ErrorCode::Invalid, message);
        e.detail.field = Some(field.into());
        e
    }

    /// 422 naming every bad line (the first one's field is the error's field).
    pub fn lines(code: ErrorCode, message: impl Into<String>, errors: Vec<RowError>) -> Self {
        let mut e = ApiError::new(code, message);
        e.detail.field = errors.first().map(|r| r.field.clone());
        e.detail.errors = Some(errors.into_iter().map(LineError::from).collect());
        e
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = ApiError::new(
            ErrorCode::RateLimited,
            format!("over this token's request rate; retry after {retry_after_secs} s"),
        );
        e.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// 413.
    pub fn too_large(limit: u64) -> Self {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.detail.message, "request failed");
        }
        let retry = self.retry_after_secs;
        let mut resp = (
            self.status,
            axum::Json(ErrorBody {
                error: *self.detail,
            }),
        )
            .into_response();
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        let message = e.to_string();
        match e {
            QueueError::BadId(_) | QueueError::NotFound(_) => {
                ApiError::new(ErrorCode::NotFound, message)
            }
            QueueError::WrongState { .. } => ApiError::new(ErrorCode::Conflict, message),
            QueueError::BadCode => ApiError::invalid("code", message),
            QueueError::IdempotencyConflict {
                first_id, state, ..
            } => {
                let message = format!(
                    "this Idempotency-Key was used for job {first_id} ({state}) with another \
                     body; nothing was enqueued"
                );
                let mut e = ApiError::new(ErrorCode::Conflict, message);
                e.detail.field = Some("Idempotency-Key".into());
                e.detail.first_id = Some(first_id);
                e
            }
            // Both are worth a retry: with the same Idempotency-Key, nothing is enqueued twice.
            QueueError::Redis(_)
            | QueueError::Unavailable(_)
            | QueueError::NotReplicated { .. } => ApiError::new(ErrorCode::Unavailable, message),
            QueueError::Protocol(_)
            | QueueError::Cipher(_)
            | QueueError::KeyMismatch { .. }
            | QueueError::Malformed { .. } => ApiError::new(ErrorCode::Internal, message),
        }
    }
}

impl From<ProducerError> for ApiError {
    fn from(e: ProducerError) -> Self {
        match e {
            ProducerError::Queue(q) => q.into(),
            ProducerError::Invalid { ref errors, .. } => {
                let field = errors.iter().next().map(|f| f.field.clone());
                let mut out = ApiError::new(ErrorCode::Invalid, e.to_string());
                out.detail.field = field;
                out
            }
            ProducerError::Timeout { .. } => ApiError::new(ErrorCode::Unavailable, e.to_string()),
        }
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        match f.code {
            1 => ApiError::new(ErrorCode::Invalid, f.message),
            _ => ApiError::new(ErrorCode::Unavailable, f.message),
        }
    }
}
