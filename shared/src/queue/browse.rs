//! What the operator console reads of the queue, as types: a page of one queue's jobs in one
//! state ([`JobFilter`], [`JobPage`], [`JobRow`]), dead letters grouped by error code
//! ([`DeadGroup`]) and a job's history ([`HistoryEntry`]). The reads themselves are in
//! `store/browse.rs`; every one is bounded by the page asked for.

use super::{ErrorRecord, JobState, Lane};
use crate::jobs::JobKind;
use serde::Serialize;

/// The states a queue keeps an index of, so their jobs can be listed page by page. Ended
/// jobs (succeeded, expired, cancelled) have none: they are found by id or natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listed {
    /// Waiting for a parent.
    Waiting,
    /// Due, in a ready list.
    Queued,
    /// Leased by a worker.
    Running,
    /// Scheduled for later (run-at times and retries).
    Scheduled,
    /// Suspended until a verify code is supplied.
    AwaitingCode,
    /// In the dead-letter set.
    Dead,
}

impl Listed {
    /// Every listed state, in the order a job goes through them.
    pub const ALL: [Listed; 6] = [
        Listed::Waiting,
        Listed::Queued,
        Listed::Running,
        Listed::Scheduled,
        Listed::AwaitingCode,
        Listed::Dead,
    ];

    /// The name in URLs and forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Listed::Waiting => "waiting",
            Listed::Queued => "queued",
            Listed::Running => "running",
            Listed::Scheduled => "scheduled",
            Listed::AwaitingCode => "awaiting_code",
            Listed::Dead => "dead",
        }
    }

    /// Parses [`Listed::as_str`].
    pub fn parse(s: &str) -> Option<Listed> {
        Listed::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Which jobs of one queue to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// The queue.
    pub kind: JobKind,
    /// The state.
    pub state: Listed,
    /// Only this lane.
    pub lane: Option<Lane>,
    /// Only this source (a batch id, an app's name).
    pub source: Option<String>,
}

/// A job's state as a list shows it: a state, or what is wrong with its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RowState {
    /// Its state.
    Is(JobState),
    /// Neither a record nor a pending entry (it ended and expired, or was purged).
    Missing,
    /// Its record is not a hash, or names no state we know.
    Malformed,
}

impl RowState {
    /// The label shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Is(state) => state.as_str(),
            RowState::Missing => "missing",
            RowState::Malformed => "malformed",
        }
    }
}

/// One job in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRow {
    /// Job id.
    pub id: String,
    /// State.
    pub state: RowState,
    /// Attempts used.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Created (Unix ms).
    pub created_ms: u64,
    /// Last change (Unix ms).
    pub updated_ms: u64,
    /// Its lane, when known (a pending job's is its list's).
    pub lane: Option<Lane>,
    /// Its source, when known.
    pub source: Option<String>,
    /// The last error.
    pub error: Option<ErrorRecord>,
}

/// One page of jobs, and where the next one starts.
#[derive(Debug, Clone, Default)]
pub struct JobPage {
    /// The jobs.
    pub rows: Vec<JobRow>,
    /// The cursor of the next page; `None` at the end.
    pub next: Option<String>,
}

/// Dead letters of one queue that share an error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadGroup {
    /// The queue.
    pub kind: JobKind,
    /// The error code (`unknown` when the record has none).
    pub code: String,
    /// How many.
    pub count: u64,
}

/// What a whole-group action did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupOutcome {
    /// Jobs retried or purged.
    pub done: u64,
    /// Jobs refused (e.g. undecodable ones cannot be retried, only purged).
    pub refused: u64,
    /// Jobs left in the group (a call handles a bounded number).
    pub remaining: u64,
}

/// One change in a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When (Unix ms, Redis's clock).
    pub at_ms: u64,
    /// The state it entered.
    pub state: JobState,
    /// The attempt it started (a `running` entry).
    pub attempt: Option<u32>,
    /// The error it recorded (retries, dead letters).
    pub error: Option<ErrorRecord>,
    /// Why, in our words (e.g. `dead letter retried`).
    pub reason: Option<String>,
}
