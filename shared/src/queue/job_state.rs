//! Where a job stands (DESIGN.md, "Job states"): the one list of states, stored in Redis by
//! their snake_case names.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a job stands. Ordered as a job's life goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// Ended before it started: its batch was cancelled.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 10] = [
        JobState::Waiting,
        JobState::Scheduled,
        JobState::Queued,
        JobState::Running,
        JobState::RetryScheduled,
        JobState::AwaitingCode,
        JobState::Succeeded,
        JobState::Expired,
        JobState::Dead,
        JobState::Cancelled,
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
            JobState::Cancelled => "cancelled",
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
            JobState::Succeeded | JobState::Dead | JobState::Expired | JobState::Cancelled
        )
    }

    /// True once a job needs nothing more from a worker: final, or suspended until someone
    /// supplies a verify code. What "wait for a job" waits for.
    pub fn is_settled(self) -> bool {
        self.is_final() || self == JobState::AwaitingCode
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
