//! Claiming work: fetch a batch of due jobs under leases, decode them, quarantine what
//! does not decode, and renew a running job's lease. `fetch.lua` also promotes due
//! scheduled jobs and takes back jobs whose lease expired, whoever held them.

use super::dependencies::ParentOutcome;
use super::{JobStore, QueueError};
use crate::jobs::{Job, JobKind};
use crate::providers::Limit;
use crate::queue::claimed::{ClaimedJob, ReservedSlot};
use crate::queue::compact;
use crate::queue::error_record::ErrorRecord;
use crate::queue::ids::kind_of_id;
use crate::queue::keys::QueueKeys;
use crate::queue::replies::{AckReply, FetchReply, FetchedRow, MalformedRow};
use crate::queue::scripts;
use crate::ratelimit::{live_per_bulk, SECOND_GUARD};
use crate::secret::Secret;
use crate::ErrorClass;
use std::time::{Duration, Instant};

/// A batch claimed by [`JobStore::fetch`].
#[derive(Debug)]
pub struct Fetched {
    /// Decoded, leased jobs.
    pub jobs: Vec<ClaimedJob>,
    /// Jobs whose payload did not decode; already moved to the dead-letter set.
    pub quarantined: usize,
    /// How long the caller may sleep before something falls due, even if nothing wakes it
    /// (ms, measured on Redis's clock); 0 to claim again at once.
    pub wait_ms: u64,
    /// The provider's limit (or its pause), not a lack of work, stopped the claim: the
    /// next slot is `wait_ms` away, whatever arrives meanwhile.
    pub held_back: bool,
}

/// What a worker asks of a claim: jobs of some kinds of one provider.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// The kinds this worker runs, all of one provider (the first names the queue the
    /// call is routed by).
    pub kinds: &'a [JobKind],
    /// Most jobs to claim (the worker's free slots).
    pub batch: usize,
    /// Unique to this claim; each job's lease token is `<prefix>:<n>`.
    pub token_prefix: &'a str,
    /// Whether to admit only what the provider's rate limit allows now, reserving each
    /// job's request slot (the worker does); without, every due job may be claimed.
    pub admission: bool,
}

impl JobStore {
    /// Claims up to `batch` due jobs of `kind`, leased for the configured lease, without
    /// rate-limit admission (tools and tests; the worker uses [`JobStore::claim`]).
    pub async fn fetch(
        &self,
        kind: JobKind,
        batch: usize,
        token_prefix: &str,
    ) -> Result<Fetched, QueueError> {
        self.claim(&ClaimRequest {
            kinds: &[kind],
            batch,
            token_prefix,
            admission: false,
        })
        .await
    }

    /// Claims due jobs of one provider's kinds in the order its capacity should go (live
    /// first, bulk keeping its minimum share, round-robin between sources), and with
    /// `admission` only as many as its limit admits now, each with its request slot
    /// reserved (`fetch.lua`). Jobs whose payload does not decode are quarantined here and
    /// not returned. A quarantine that fails (Redis went away) is logged and left for
    /// later: that job's lease runs out and it is claimed, and quarantined, again; the good
    /// jobs of the batch are returned all the same, so none of them is left leased with
    /// nobody running it.
    pub async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Fetched, QueueError> {
        let Some(&first) = request.kinds.first() else {
            return Ok(Fetched {
                jobs: Vec::new(),
                quarantined: 0,
                wait_ms: 1_000,
                held_back: false,
            });
        };
        let keys = QueueKeys::new(first);
        let provider = first.provider();
        let limit = first.action().limit;
        let rate = match request.admission {
            true => limit.rate(&self.cfg.limits).unwrap_or(0.0),
            false => 0.0,
        };
        let kinds: Vec<JobKind> = request
            .kinds
            .iter()
            .copied()
            .filter(|k| k.provider() == provider)
            .collect();
        let mut inv = self.script(&scripts::FETCH, &keys);
        inv.key(keys.provider().limit_slot(limit));
        inv.arg(request.batch.max(1))
            .arg(self.cfg.queue.lease_ms)
            .arg(request.token_prefix)
            .arg(rate.to_string())
            .arg(SECOND_GUARD.as_micros() as u64)
            .arg(self.cfg.limits.reserve_ahead_ms)
            .arg(live_per_bulk(self.cfg.limits.bulk_min_share))
            .arg(self.cfg.queue.retention_secs.max(1))
            .arg(kinds.len());
        for kind in &kinds {
            inv.arg(kind.as_str());
        }
        let reply = FetchReply::decode(&self.run_list(inv).await?)?;
        let mut jobs = Vec::with_capacity(reply.rows.len());
        let mut quarantined = 0;
        for row in reply.rows {
            match row.and_then(|row| self.decode_claim(row, rate > 0.0, limit)) {
                Ok(job) => jobs.push(job),
                Err(bad) => match self.quarantine(&bad).await {
                    Ok(()) => quarantined += 1,
                    Err(e) => {
                        tracing::warn!(job_id = %bad.id, error = %e, "could not quarantine an undecodable job yet; its lease will run out and it is tried again");
                    }
                },
            }
        }
        Ok(Fetched {
            jobs,
            quarantined,
            wait_ms: reply.wait_ms,
            held_back: reply.held_back,
        })
    }

    /// Opens a claimed row's payload and code.
    fn decode_claim(
        &self,
        row: FetchedRow,
        reserved: bool,
        limit: Limit,
    ) -> Result<ClaimedJob, MalformedRow> {
        let bad = |reason: String| MalformedRow {
            id: row.id.clone(),
            token: row.token.clone(),
            reason,
        };
        let plain = self
            .cipher
            .open(&row.payload)
            .map_err(|e| bad(format!("payload: {e}")))?;
        let job: Job = serde_json::from_slice(&compact::unpack(&plain))
            .map_err(|e| bad(format!("payload does not decode: {e}")))?;
        let kind = kind_of_id(&row.id).ok_or_else(|| bad("not a job id".to_string()))?;
        if job.kind() != kind {
            return Err(bad(format!(
                "payload is a {} job in the {kind} queue",
                job.kind()
            )));
        }
        let verify_code = if row.code.is_empty() {
            None
        } else {
            let plain = self
                .cipher
                .open(&row.code)
                .map_err(|e| bad(format!("verify code: {e}")))?;
            let code = String::from_utf8(plain)
                .map_err(|_| bad("verify code is not UTF-8".to_string()))?;
            Some(Secret::new(code))
        };
        Ok(ClaimedJob {
            id: row.id,
            job,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            token: row.token,
            uncertain: row.uncertain,
            phase: row.phase,
            verify_code,
            code_failures: row.code_failures,
            lane: row.lane,
            slot: reserved.then(|| ReservedSlot {
                limit,
                at: Instant::now() + Duration::from_micros(row.delay_us),
            }),
            waited_ms: row.waited_ms,
        })
    }

    /// Moves a claimed job that cannot run to the dead-letter set, with the reason.
    async fn quarantine(&self, bad: &MalformedRow) -> Result<(), QueueError> {
        let keys = &self.keys_for(&bad.id)?;
        tracing::warn!(job_id = %bad.id, kind = %keys.kind(), reason = %bad.reason, "quarantined an undecodable job");
        let err = ErrorRecord::new(ErrorClass::Undecodable, "Undecodable", bad.reason.clone());
        let mut inv = self.script(&scripts::QUARANTINE, keys);
        inv.arg(&bad.id).arg(&bad.token).arg(err.to_json());
        let reply = AckReply::decode(&self.run_list(inv).await?)?;
        let why = format!("parent {} failed", bad.id);
        self.resolve_children(&reply.dependents, &ParentOutcome::Failed(why))
            .await
    }

    /// Extends a running job's lease. `false` means the lease was lost.
    pub async fn renew(&self, kind: JobKind, id: &str, token: &str) -> Result<bool, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut inv = self.script(&scripts::RENEW, &keys);
        inv.arg(id).arg(token).arg(self.cfg.queue.lease_ms);
        let renewed: i64 = self.run(inv).await?;
        Ok(renewed == 1)
    }
}
