//! A job as a worker holds it: decoded, leased, with what its attempt needs to know.

use crate::jobs::{Job, JobKind};
use crate::secret::Secret;

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
