//! What an enqueue takes and answers.

use serde::Serialize;

/// Options for one enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// A second enqueue with the same key and the same payload returns the first job's id
    /// instead of a new job; with another payload it is refused
    /// (`QueueError::IdempotencyConflict`).
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

/// Where an idempotency key stands, asked before enqueuing (`JobStore::check_keys`): what
/// an enqueue of the same job with the same key would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "key", rename_all = "snake_case")]
pub enum KeyCheck {
    /// No key, or a key no job holds: the job would be new.
    Unused,
    /// The key holds a job with the same payload: the enqueue would return it.
    Same {
        /// That job's id.
        first_id: String,
    },
    /// The key holds a job with another payload: the enqueue would be refused.
    Changed {
        /// That job's id.
        first_id: String,
        /// Its state (`missing` when its record is gone).
        state: String,
    },
}
