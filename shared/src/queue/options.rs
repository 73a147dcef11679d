//! What an enqueue takes and answers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which line a job waits in for its provider's capacity. Live work (an app's signups) goes
/// first; bulk work (backfills) keeps a configured minimum share of each provider's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// Single enqueues: apps, the HTTP API. The default of `enqueue`.
    Live,
    /// Backfills and batch uploads. The default of `enqueue_many`.
    Bulk,
}

impl Lane {
    /// Both lanes, live first.
    pub const ALL: [Lane; 2] = [Lane::Live, Lane::Bulk];

    /// `live` or `bulk`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Live => "live",
            Lane::Bulk => "bulk",
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Lane {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lane::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown lane `{s}` (expected live or bulk)"))
    }
}

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
    /// The lane; `None` takes the entry point's default (live for `enqueue`, bulk for
    /// `enqueue_many`).
    pub lane: Option<Lane>,
    /// Who the work is for, for the fair shares within a lane (an app, an API token, a
    /// backfill run); `None` is the entry point's default source.
    pub source: Option<String>,
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
