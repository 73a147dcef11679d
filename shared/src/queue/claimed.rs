//! A job as a worker holds it: decoded, leased, with what its attempt needs to know.

use super::options::Lane;
use crate::jobs::{Job, JobKind};
use crate::providers::Limit;
use crate::secret::Secret;
use std::time::Instant;

/// A request slot the claim reserved for a job's first request under its provider's limit:
/// the job sends at `at` without asking the limiter again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedSlot {
    /// The limit the slot belongs to.
    pub limit: Limit,
    /// When the request may go.
    pub at: Instant,
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
    /// The lane it waited in.
    pub lane: Lane,
    /// Its first request's slot, when the claim reserved one.
    pub slot: Option<ReservedSlot>,
    /// How long it waited from its enqueue to its claim (Redis's clock).
    pub waited_ms: u64,
}

impl ClaimedJob {
    /// The job's kind.
    pub fn kind(&self) -> JobKind {
        self.job.kind()
    }
}
