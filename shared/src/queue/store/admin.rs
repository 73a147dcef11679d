//! What operators and apps read and steer: one job's status, dead letters (list, retry,
//! purge) and per-queue statistics.

use super::{refused, JobStore, QueueError};
use crate::clock::now_ms;
use crate::jobs::JobKind;
use crate::queue::error_record::ErrorRecord;
use crate::queue::job_state::JobState;
use crate::queue::keys::QueueKeys;
use crate::queue::pending::PendingEntry;
use crate::queue::replies::{self, Revived};
use crate::queue::scripts;
use crate::queue::status::{redact_secrets, JobStatus, QueueStats};
use redis::AsyncCommands;
use std::collections::HashMap;

impl JobStore {
    /// One job's status, or `NotFound`. Secret result fields are `[redacted]` unless
    /// `reveal_secrets`.
    pub async fn status(&self, id: &str, reveal_secrets: bool) -> Result<JobStatus, QueueError> {
        let keys = self.keys_for(id)?;
        let mut conn = self.conn.clone();
        // Atomic, so a fetch cannot move the job from `pending` to its record in between.
        let (record, pending): (HashMap<String, Vec<u8>>, Option<Vec<u8>>) = redis::pipe()
            .atomic()
            .hgetall(keys.job(id))
            .hget(keys.pending(), id)
            .query_async(&mut conn)
            .await?;
        if record.is_empty() {
            return match pending {
                Some(raw) => pending_status(id, keys.kind(), &raw),
                None => Err(QueueError::NotFound(id.to_string())),
            };
        }
        self.record_status(id, keys.kind(), &record, reveal_secrets)
    }

    /// A job's status from its record's fields.
    fn record_status(
        &self,
        id: &str,
        kind: JobKind,
        h: &HashMap<String, Vec<u8>>,
        reveal_secrets: bool,
    ) -> Result<JobStatus, QueueError> {
        let text = |k: &str| h.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        let num = |k: &str| text(k).and_then(|s| s.parse::<u64>().ok());
        let state_text = text("state").unwrap_or_default();
        let state = JobState::parse(&state_text).ok_or_else(|| {
            QueueError::Protocol(format!("job {id} has unknown state {state_text:?}"))
        })?;
        let result = match h.get("result").filter(|r| !r.is_empty()) {
            Some(sealed) => {
                let plain = self.cipher.open(sealed)?;
                let mut v: serde_json::Value = serde_json::from_slice(&plain)
                    .map_err(|e| QueueError::Protocol(format!("stored result: {e}")))?;
                if !reveal_secrets {
                    redact_secrets(&mut v);
                }
                Some(v)
            }
            None => None,
        };
        Ok(JobStatus {
            id: id.to_string(),
            kind,
            state,
            attempts: num("attempts").unwrap_or(0) as u32,
            max_attempts: num("max_attempts").unwrap_or(0) as u32,
            throttles: num("throttles").unwrap_or(0) as u32,
            code_failures: num("code_failures").unwrap_or(0) as u32,
            created_ms: num("created_ms").unwrap_or(0),
            updated_ms: num("updated_ms").unwrap_or(0),
            run_at_ms: matches!(state, JobState::RetryScheduled | JobState::Scheduled)
                .then(|| num("run_at_ms"))
                .flatten(),
            deadline_ms: (state == JobState::AwaitingCode)
                .then(|| num("deadline_ms"))
                .flatten(),
            depends_on: text("parent").filter(|p| !p.is_empty()),
            uncertain: num("uncertain") == Some(1),
            last_error: text("error").and_then(|e| ErrorRecord::parse(&e)),
            result,
        })
    }

    /// Dead jobs of one kind, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        kind: JobKind,
        limit: usize,
    ) -> Result<Vec<JobStatus>, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrange(keys.dead(), 0, limit.max(1) as isize - 1)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.status(&id, false).await {
                Ok(s) => out.push(s),
                Err(QueueError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Brings a dead job back to the queue (or to waiting, when it has a parent).
    pub async fn retry_dead(&self, id: &str) -> Result<JobState, QueueError> {
        let keys = self.keys_for(id)?;
        let mut inv = self.script(&scripts::DEAD_RETRY, &keys);
        inv.arg(id);
        let verdict = replies::revived(&self.run_list(inv).await?)?;
        match refused(id, verdict, "only a dead job can be retried")? {
            Revived::Queued => Ok(JobState::Queued),
            Revived::Waiting(parent) => {
                self.link_dependency(keys.kind(), id, &parent).await?;
                Ok(JobState::Waiting)
            }
        }
    }

    /// Deletes a dead job for good.
    pub async fn purge_dead(&self, id: &str) -> Result<(), QueueError> {
        let keys = self.keys_for(id)?;
        let mut inv = self.script(&scripts::DEAD_PURGE, &keys);
        inv.arg(id);
        let verdict = replies::done(&self.run_list(inv).await?)?;
        refused(id, verdict, "only a dead job can be purged")
    }

    /// Jobs per state for every queue.
    pub async fn stats(&self) -> Result<Vec<QueueStats>, QueueError> {
        let mut out = Vec::new();
        for kind in JobKind::ALL {
            out.push(self.queue_stats(kind).await?);
        }
        Ok(out)
    }

    /// Jobs per state of one queue.
    pub async fn queue_stats(&self, kind: JobKind) -> Result<QueueStats, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.llen(keys.ready())
            .zcard(keys.scheduled())
            .zcard(keys.leased())
            .zcard(keys.dead())
            .zcard(keys.awaiting())
            .zcard(keys.waiting())
            .hgetall(keys.counts())
            .lindex(keys.ready(), 0);
        #[allow(clippy::type_complexity)]
        let (queued, scheduled, running, dead, awaiting, waiting, counts, head): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            HashMap<String, u64>,
            Option<String>,
        ) = pipe.query_async(&mut conn).await?;
        let oldest_ready_age_ms = match head {
            Some(id) => {
                let (updated, pending): (Option<u64>, Option<Vec<u8>>) = redis::pipe()
                    .hget(keys.job(&id), "updated_ms")
                    .hget(keys.pending(), &id)
                    .query_async(&mut conn)
                    .await?;
                let since = updated.or_else(|| {
                    pending
                        .as_deref()
                        .and_then(PendingEntry::parse)
                        .map(|e| e.created_ms)
                });
                since.map(|u| now_ms().saturating_sub(u)).unwrap_or(0)
            }
            None => 0,
        };
        let count = |k: &str| counts.get(k).copied().unwrap_or(0);
        Ok(QueueStats {
            kind,
            waiting,
            queued,
            running,
            scheduled_or_retrying: scheduled,
            awaiting_code: awaiting,
            dead,
            enqueued_total: count("enqueued"),
            succeeded_total: count("succeeded"),
            expired_total: count("expired"),
            oldest_ready_age_ms,
            leases_expired: count("leases_expired"),
        })
    }
}

/// The status of a job enqueued in bulk that no worker has claimed yet.
fn pending_status(id: &str, kind: JobKind, raw: &[u8]) -> Result<JobStatus, QueueError> {
    let entry = PendingEntry::parse(raw)
        .ok_or_else(|| QueueError::Protocol(format!("job {id} has a malformed pending entry")))?;
    Ok(JobStatus {
        id: id.to_string(),
        kind,
        state: JobState::Queued,
        attempts: 0,
        max_attempts: entry.max_attempts,
        throttles: 0,
        code_failures: 0,
        created_ms: entry.created_ms,
        updated_ms: entry.created_ms,
        run_at_ms: None,
        deadline_ms: None,
        depends_on: None,
        uncertain: false,
        last_error: None,
        result: None,
    })
}
