//! What operators and apps read and steer: one job's status, dead letters (list, retry,
//! purge) and per-queue statistics.

use super::{refused, JobStore, QueueError};
use crate::jobs::JobKind;
use crate::queue::error_record::ErrorRecord;
use crate::queue::job_state::JobState;
use crate::queue::keys::{ProviderKeys, QueueKeys};
use crate::queue::pending::PendingEntry;
use crate::queue::replies::{self, Revived, StatsReply, StoredJob};
use crate::queue::scripts;
use crate::queue::status::{redact_secrets, JobStatus, QueueStats};
use crate::ErrorClass;
use std::collections::HashMap;

impl JobStore {
    /// Checks, within `timeout`, that every provider's queues can be used now: a read of
    /// each provider's keys (on a cluster, from the node that holds its slot). A cluster
    /// with a slot nobody serves fails this while PING still answers.
    pub async fn probe(&self, timeout: std::time::Duration) -> Result<(), QueueError> {
        for provider in crate::providers::Provider::ALL {
            let mut conn = self.conn.clone();
            let mut exists = redis::cmd("EXISTS");
            exists.arg(ProviderKeys::new(provider).notify());
            let read = exists.query_async::<i64>(&mut conn);
            match tokio::time::timeout(timeout, read).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(QueueError::Unavailable(format!("{provider}'s queues: {e}")))
                }
                Err(_) => {
                    return Err(QueueError::Unavailable(format!(
                        "{provider}'s queues: no answer within {timeout:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// One job's status, or `NotFound`. Secret result fields are `[redacted]` unless
    /// `reveal_secrets`. A record that cannot be read is `Malformed`.
    pub async fn status(&self, id: &str, reveal_secrets: bool) -> Result<JobStatus, QueueError> {
        let keys = self.keys_for(id)?;
        let mut inv = self.script(&scripts::READ_JOB, &keys);
        inv.arg(id);
        match StoredJob::decode(&self.run_list(inv).await?)? {
            StoredJob::Record(record) => {
                self.record_status(id, keys.kind(), &record, reveal_secrets)
            }
            StoredJob::Pending(raw) => pending_status(id, keys.kind(), &raw),
            StoredJob::Missing => Err(QueueError::NotFound(id.to_string())),
            StoredJob::Malformed(why) => Err(QueueError::Malformed {
                id: id.to_string(),
                why,
            }),
        }
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
        let malformed = |why: String| QueueError::Malformed {
            id: id.to_string(),
            why,
        };
        let state_text = text("state").unwrap_or_default();
        let state = JobState::parse(&state_text)
            .ok_or_else(|| malformed(format!("field state holds {state_text:?}, not a state")))?;
        let result = match h.get("result").filter(|r| !r.is_empty()) {
            Some(sealed) => {
                let plain = self
                    .cipher
                    .open(sealed)
                    .map_err(|e| malformed(format!("field result: {e}")))?;
                let mut v: serde_json::Value = serde_json::from_slice(&plain)
                    .map_err(|e| malformed(format!("field result: {e}")))?;
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
            // A claim writes only `started_ms` and a success only `finished_ms` (job_rows.lua).
            updated_ms: ["updated_ms", "started_ms", "finished_ms"]
                .into_iter()
                .filter_map(num)
                .max()
                .unwrap_or(0),
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

    /// Dead jobs of one kind, oldest first, at most `limit`. A member of the dead-letter
    /// set whose record cannot be read is listed as such (a dead job whose last error says
    /// what is wrong), never an error for the whole list.
    pub async fn dead_letters(
        &self,
        kind: JobKind,
        limit: usize,
    ) -> Result<Vec<JobStatus>, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut inv = self.script(&scripts::DEAD_LIST, &keys);
        inv.arg(0).arg(limit.max(1) as i64 - 1);
        let ids: Vec<String> = self.run(inv).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let why = match self.status(&id, false).await {
                Ok(s) => {
                    out.push(s);
                    continue;
                }
                Err(QueueError::NotFound(_)) => "it has no record".to_string(),
                Err(QueueError::BadId(_)) => "it is not a job id".to_string(),
                Err(QueueError::Malformed { why, .. }) => why,
                Err(e) => return Err(e),
            };
            out.push(malformed_status(&id, kind, why));
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

    /// Deletes a dead job for good. Anything the dead-letter set lists can be purged, a
    /// malformed member too; one whose id names no queue is looked for in every queue.
    pub async fn purge_dead(&self, id: &str) -> Result<(), QueueError> {
        let queues = match self.keys_for(id) {
            Ok(keys) => vec![keys],
            Err(_) => JobKind::ALL.into_iter().map(QueueKeys::new).collect(),
        };
        let mut verdict = replies::Verdict::NotFound;
        for keys in &queues {
            let mut inv = self.script(&scripts::DEAD_PURGE, keys);
            inv.arg(id);
            verdict = replies::done(&self.run_list(inv).await?)?;
            if verdict != replies::Verdict::NotFound {
                break;
            }
        }
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
        let inv = self.script(&scripts::QUEUE_STATS, &QueueKeys::new(kind));
        let r = StatsReply::decode(&self.run_list(inv).await?)?;
        Ok(QueueStats {
            kind,
            waiting: r.waiting,
            queued: r.queued,
            queued_live: r.queued_live,
            queued_bulk: r.queued_bulk,
            running: r.running,
            scheduled_or_retrying: r.scheduled,
            awaiting_code: r.awaiting,
            dead: r.dead,
            enqueued_total: r.enqueued,
            succeeded_total: r.succeeded,
            expired_total: r.expired,
            cancelled_total: r.cancelled,
            started_total: r.started,
            paused: r.paused,
            oldest_ready_age_ms: r.oldest_ready_age_ms,
            leases_expired: r.leases_expired,
            malformed_keys: r.malformed_keys,
        })
    }
}

/// How a dead-letter member whose record cannot be read is shown.
fn malformed_status(id: &str, kind: JobKind, why: String) -> JobStatus {
    JobStatus {
        id: id.to_string(),
        kind,
        state: JobState::Dead,
        attempts: 0,
        max_attempts: 0,
        throttles: 0,
        code_failures: 0,
        created_ms: 0,
        updated_ms: 0,
        run_at_ms: None,
        deadline_ms: None,
        depends_on: None,
        uncertain: false,
        last_error: Some(ErrorRecord::new(
            ErrorClass::Undecodable,
            "MalformedRecord",
            format!("the dead-letter set lists {id}, but {why}"),
        )),
        result: None,
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
