//! What operators and apps read back: one job's status ([`JobStatus`]) and a queue's counts
//! ([`QueueStats`]).

use super::error_record::ErrorRecord;
use super::job_state::JobState;
use crate::jobs::JobKind;
use serde::Serialize;

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

/// Jobs per state of one queue, and its running totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// The queue.
    pub kind: JobKind,
    /// Waiting for a parent.
    pub waiting: u64,
    /// Due, in a ready list.
    pub queued: u64,
    /// Of those, in the live lane.
    pub queued_live: u64,
    /// Of those, in the bulk lane.
    pub queued_bulk: u64,
    /// Leased by a worker.
    pub running: u64,
    /// Scheduled for later: run-at times and retries.
    pub scheduled_or_retrying: u64,
    /// Suspended until a verify code is supplied.
    pub awaiting_code: u64,
    /// In the dead-letter set.
    pub dead: u64,
    /// Jobs ever enqueued.
    pub enqueued_total: u64,
    /// Jobs ever succeeded.
    pub succeeded_total: u64,
    /// Jobs ever expired.
    pub expired_total: u64,
    /// Jobs ever cancelled (their batch was cancelled before they started).
    pub cancelled_total: u64,
    /// Attempts ever started (claims).
    pub started_total: u64,
    /// Claiming this kind is paused (`queue pause`).
    pub paused: bool,
    /// Age of the oldest due job, in ms (0 when none).
    pub oldest_ready_age_ms: u64,
    /// Leases that expired (the holder died or hung).
    pub leases_expired: u64,
    /// Queue keys of the wrong type, counted as empty (the next fetch moves them aside).
    pub malformed_keys: Vec<String>,
}

impl QueueStats {
    /// The live counts by the state label the `onboard_queue_jobs` gauge and `stats` show.
    pub fn by_state(&self) -> [(&'static str, u64); 6] {
        [
            ("waiting", self.waiting),
            ("queued", self.queued),
            ("running", self.running),
            ("scheduled_or_retrying", self.scheduled_or_retrying),
            ("awaiting_code", self.awaiting_code),
            ("dead", self.dead),
        ]
    }

    /// The running totals by the names `stats` shows.
    pub fn totals(&self) -> [(&'static str, u64); 4] {
        [
            ("succeeded_total", self.succeeded_total),
            ("expired_total", self.expired_total),
            ("cancelled_total", self.cancelled_total),
            ("enqueued_total", self.enqueued_total),
        ]
    }
}

/// Replaces every object member whose name says it is a secret.
pub(crate) fn redact_secrets(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k.to_ascii_lowercase().contains("secret") {
                    *val = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_secrets(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}
