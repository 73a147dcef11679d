//! What an enqueue takes and answers.

use serde::Serialize;

/// Options for one enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// A second enqueue with the same key returns the first job's id instead of a new job.
    pub idempotency_key: Option<String>,
    /// Overrides the kind's configured max attempts.
    pub max_attempts: Option<u32>,
    /// Do not run before this time (Unix milliseconds).
    pub run_at_ms: Option<u64>,
    /// Wait until this job succeeds; fail with "dependency failed" if it does not.
    pub depends_on: Option<String>,
}

/// The answer to one enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    /// The job's id (the FIRST job's id when this was a duplicate).
    pub id: String,
    /// True when the idempotency key had been used before and nothing new was enqueued.
    pub duplicate: bool,
}
