//! The one classification of everything a provider call can end in, and the error classes
//! recorded on failed jobs.
//!
//! Every provider module maps its own codes onto [`ProviderError`] once, in its `errors`
//! mapping; the worker decides what to do from the variant alone (retry with backoff,
//! reschedule without using an attempt, ask for the code again, dead-letter, reconcile).
//! [`ErrorClass`] is what a job's error record stores: the provider classes, plus the
//! queue's own (undecodable, dependency failed, lease expired).

use std::time::Duration;

/// How a provider call failed, classified as PROVIDERS.md lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Retry later with backoff: server errors, non-2xx, a body that is not JSON, a
    /// connection refused before anything was sent, a stale signature timestamp.
    #[error("transient provider error {code}: {message}")]
    Transient { code: String, message: String },

    /// Someone says slow down (see [`ThrottledBy`]). Wait `retry_after`; this does NOT use
    /// up an attempt.
    #[error("throttled by {by} ({code}); retry after {retry_after:?}")]
    Throttled {
        code: String,
        retry_after: Duration,
        by: ThrottledBy,
    },

    /// The verify code was wrong or expired (`FailedOperation.VerificationCodeIllegal`):
    /// ask the user for the code again.
    #[error("verify code rejected ({code}): {message}")]
    CodeRejected { code: String, message: String },

    /// Fail at once and keep the provider's code and message.
    #[error("permanent provider error {code}: {message}")]
    Permanent { code: String, message: String },

    /// The request may have reached the provider (timeout or connection cut after sending):
    /// the effect is unknown, so a create must reconcile before it is repeated.
    #[error("outcome unknown: {message}")]
    OutcomeUnknown { message: String },
}

/// Whose limit a [`ProviderError::Throttled`] hit. Only the provider's own throttling pauses
/// the provider for every worker; the others defer this one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottledBy {
    /// Our global rate limiter: the provider's limit is spent for now.
    OurLimit,
    /// Our rate limiter could not be asked (Redis unreachable): we may not send.
    LimiterUnavailable,
    /// The provider answered with its throttling code.
    Provider,
    /// A provider rule for one phone number (one code per 60 seconds), not the provider.
    PerPhoneRule,
}

impl std::fmt::Display for ThrottledBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ThrottledBy::OurLimit => "our rate limit",
            ThrottledBy::LimiterUnavailable => "an unavailable rate limiter",
            ThrottledBy::Provider => "the provider",
            ThrottledBy::PerPhoneRule => "a per-phone rule",
        })
    }
}

/// The class of a failure, as a stable lowercase label for metrics and job records. The
/// first five are the classes of a [`ProviderError`]; the rest are the queue's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// See [`ProviderError::Transient`].
    Transient,
    /// See [`ProviderError::Throttled`].
    Throttled,
    /// See [`ProviderError::CodeRejected`].
    CodeRejected,
    /// See [`ProviderError::Permanent`].
    Permanent,
    /// See [`ProviderError::OutcomeUnknown`].
    OutcomeUnknown,
    /// The job's stored record or payload could not be read (quarantined).
    Undecodable,
    /// The job's parent failed (`depends_on`).
    #[serde(rename = "dependency")]
    DependencyFailed,
    /// The job's lease ran out on its last allowed attempt.
    LeaseExpired,
    /// A class this version does not know (a record written by another version).
    #[serde(other)]
    Unknown,
}

impl ErrorClass {
    /// The label used in metrics and dead-letter records.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Throttled => "throttled",
            ErrorClass::CodeRejected => "code_rejected",
            ErrorClass::Permanent => "permanent",
            ErrorClass::OutcomeUnknown => "outcome_unknown",
            ErrorClass::Undecodable => "undecodable",
            ErrorClass::DependencyFailed => "dependency",
            ErrorClass::LeaseExpired => "lease_expired",
            ErrorClass::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderError {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Transient { .. } => ErrorClass::Transient,
            ProviderError::Throttled { .. } => ErrorClass::Throttled,
            ProviderError::CodeRejected { .. } => ErrorClass::CodeRejected,
            ProviderError::Permanent { .. } => ErrorClass::Permanent,
            ProviderError::OutcomeUnknown { .. } => ErrorClass::OutcomeUnknown,
        }
    }

    /// The provider's error code, or a transport label (`Timeout`, `HttpStatus500`, ...).
    pub fn code(&self) -> &str {
        match self {
            ProviderError::Transient { code, .. }
            | ProviderError::Throttled { code, .. }
            | ProviderError::CodeRejected { code, .. }
            | ProviderError::Permanent { code, .. } => code,
            ProviderError::OutcomeUnknown { .. } => "OutcomeUnknown",
        }
    }

    /// The provider's message (empty for throttling).
    pub fn message(&self) -> &str {
        match self {
            ProviderError::Transient { message, .. }
            | ProviderError::CodeRejected { message, .. }
            | ProviderError::Permanent { message, .. }
            | ProviderError::OutcomeUnknown { message } => message,
            ProviderError::Throttled { .. } => "",
        }
    }

    /// Shorthand for a transient error.
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        ProviderError::Transient {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Shorthand for throttling.
    pub fn throttled(by: ThrottledBy, code: impl Into<String>, retry_after: Duration) -> Self {
        ProviderError::Throttled {
            code: code.into(),
            retry_after,
            by,
        }
    }

    /// Shorthand for a permanent error.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        ProviderError::Permanent {
            code: code.into(),
            message: message.into(),
        }
    }

    #[cfg(feature = "http")]
    /// Classifies a reqwest transport failure. A timeout, or a failure once the request was
    /// (maybe) written, is `OutcomeUnknown`; a connect failure never reached the provider and
    /// is `Transient`.
    pub fn from_transport(err: &reqwest::Error) -> Self {
        if err.is_connect() {
            ProviderError::transient("ConnectFailed", "could not connect to the provider")
        } else if err.is_timeout() {
            ProviderError::OutcomeUnknown {
                message: "request timed out after it was sent".into(),
            }
        } else if err.is_decode() || err.is_body() {
            ProviderError::transient("BadBody", "could not read the provider's response body")
        } else {
            ProviderError::OutcomeUnknown {
                message: "connection failed after the request was sent".into(),
            }
        }
    }
}
