//! What the queue stores and hands out: job states, error records, enqueue options, claimed
//! jobs and attempt outcomes.

use crate::jobs::{Job, JobKind};
use crate::secret::Secret;
use crate::ProviderError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a job stands (DESIGN.md, "Job states").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its parent job (`depends_on`) to succeed.
    Waiting,
    /// Enqueued with a run-at time in the future.
    Scheduled,
    /// Due, in the ready list.
    Queued,
    /// Held by a worker under a lease.
    Running,
    /// Failed transiently or throttled; runs again at `run_at_ms`.
    RetryScheduled,
    /// `create-account` only: the code was texted; waiting for someone to supply it.
    AwaitingCode,
    /// Finished successfully.
    Succeeded,
    /// No code was supplied before the deadline.
    Expired,
    /// In the dead-letter set.
    Dead,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 9] = [
        JobState::Waiting,
        JobState::Scheduled,
        JobState::Queued,
        JobState::Running,
        JobState::RetryScheduled,
        JobState::AwaitingCode,
        JobState::Succeeded,
        JobState::Expired,
        JobState::Dead,
    ];

    /// The snake_case name stored in Redis and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Scheduled => "scheduled",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::RetryScheduled => "retry_scheduled",
            JobState::AwaitingCode => "awaiting_code",
            JobState::Succeeded => "succeeded",
            JobState::Expired => "expired",
            JobState::Dead => "dead",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True for states a job does not leave by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Expired
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt failed, as stored on the job and in the dead-letter set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// `transient`, `throttled`, `code_rejected`, `permanent`, `outcome_unknown`,
    /// `undecodable` or `dependency`.
    pub class: String,
    /// The provider's code, or our own label (`DependencyFailed`, `EffectUncertain`, ...).
    pub code: String,
    /// The provider's message, or our explanation.
    pub message: String,
}

impl ErrorRecord {
    /// The record of a provider error.
    pub fn from_provider(err: &ProviderError) -> Self {
        ErrorRecord {
            class: err.class().as_str().to_string(),
            code: err.code().to_string(),
            message: match err {
                ProviderError::Throttled { retry_after, .. } => {
                    format!("throttled; retry after {} ms", retry_after.as_millis())
                }
                other => other.message().to_string(),
            },
        }
    }

    pub(crate) fn to_json(&self) -> String {
        // Serialising three strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

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

/// Which phase a `create-account` job is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePhase {
    /// Ask the provider to text a code.
    Send,
    /// Create the account with the supplied code.
    Verify,
}

/// A job a worker claimed, decoded and leased.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Job id.
    pub id: String,
    /// The payload.
    pub job: Job,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The job's max attempts.
    pub max_attempts: u32,
    /// The lease token; every outcome is checked against it.
    pub token: String,
    /// True when an earlier attempt's outcome is unknown: creates must reconcile first.
    pub uncertain: bool,
    /// `create-account` phase.
    pub phase: CodePhase,
    /// The supplied verify code (phase `Verify`).
    pub verify_code: Option<Secret>,
    /// Wrong codes so far.
    pub code_failures: u32,
}

impl ClaimedJob {
    /// The job's kind.
    pub fn kind(&self) -> JobKind {
        self.job.kind()
    }
}

/// The outcome of one attempt, as the worker reports it.
#[derive(Debug, Clone)]
pub enum Ack {
    /// Done; `result` is stored encrypted.
    Succeeded(serde_json::Value),
    /// Try again after `delay_ms` (uses the attempt); `uncertain` flags an unknown effect.
    Retry {
        /// Backoff delay.
        delay_ms: u64,
        /// Why.
        error: ErrorRecord,
        /// The attempt's effect is unknown.
        uncertain: bool,
    },
    /// Throttled: try again after `delay_ms` WITHOUT using the attempt.
    Defer {
        /// Wait.
        delay_ms: u64,
        /// Why.
        error: ErrorRecord,
    },
    /// Dead-letter now.
    Dead(ErrorRecord),
    /// Phase 1 done: wait for a code until `deadline_ms`.
    AwaitCode {
        /// Unix ms after which the job expires.
        deadline_ms: u64,
        /// The phone, masked, for the `awaiting_code` event.
        masked_phone: String,
    },
    /// The supplied code was wrong: wait for another one (dead after `max_failures`).
    CodeRejected {
        /// New deadline.
        deadline_ms: u64,
        /// Wrong codes allowed.
        max_failures: u32,
        /// The provider's answer.
        error: ErrorRecord,
    },
    /// Shutdown: hand the job straight back to the queue.
    Release,
}

/// What became of an ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckStatus {
    /// Recorded as succeeded.
    Succeeded,
    /// Rescheduled with backoff.
    Retry,
    /// Rescheduled without using an attempt.
    Deferred,
    /// Dead-lettered (possibly because attempts ran out).
    Dead,
    /// Waiting for a code.
    AwaitingCode,
    /// Handed back to the queue.
    Released,
    /// The lease was lost (expired and taken over): nothing was recorded.
    Stale,
}

/// One job as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// Job id.
    pub id: String,
    /// Kind.
    pub kind: JobKind,
    /// State.
    pub state: JobState,
    /// Attempts used.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Throttled deferrals (these used no attempt).
    pub throttles: u32,
    /// Wrong verify codes so far.
    pub code_failures: u32,
    /// Created (Unix ms).
    pub created_ms: u64,
    /// Last change (Unix ms).
    pub updated_ms: u64,
    /// Next run (Unix ms) for scheduled and retrying jobs.
    pub run_at_ms: Option<u64>,
    /// Code deadline (Unix ms) for awaiting jobs.
    pub deadline_ms: Option<u64>,
    /// Parent job, if any.
    pub depends_on: Option<String>,
    /// An attempt's effect is unknown (the next attempt reconciles).
    pub uncertain: bool,
    /// The last error.
    pub last_error: Option<ErrorRecord>,
    /// The result: secret fields shown as `[redacted]` unless asked for.
    pub result: Option<serde_json::Value>,
}
