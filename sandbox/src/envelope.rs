//! The Tencent-style response envelope shared by IoT Explorer and Tencent Cloud:
//! `{"Response": {..., "RequestId": ".."}}` or `{"Response": {"Error": {"Code", "Message"},
//! "RequestId": ".."}}`, always HTTP 200.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// An error answer: code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `Error.Code`.
    pub code: String,
    /// `Error.Message`.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// An error whose message repeats the code (as the partner API does for many codes).
    pub fn code(code: &str) -> Self {
        ApiError::new(code, code)
    }
}

/// A success answer with `fields` plus `RequestId`.
pub fn ok(request_id: &str, mut fields: Map<String, Value>) -> Response {
    fields.insert("RequestId".into(), Value::String(request_id.to_string()));
    Json(json!({ "Response": fields })).into_response()
}

/// An error answer.
pub fn err(request_id: &str, e: &ApiError) -> Response {
    Json(json!({
        "Response": {
            "Error": { "Code": e.code, "Message": e.message },
            "RequestId": request_id,
        }
    }))
    .into_response()
}
