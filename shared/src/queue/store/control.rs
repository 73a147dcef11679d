//! Steering the queues: pausing a job kind in every worker at once (a provider outage),
//! and the batches backfills run as: registered, listed, counted, paused, resumed and
//! cancelled. A batch is a source of the bulk lane; its state lives with each provider it
//! has jobs at (`source:<id>`, read by the claim in the same slot) and in a registry.

use super::dependencies::ParentOutcome;
use super::{refused, JobStore, QueueError};
use crate::clock::now_ms;
use crate::jobs::JobKind;
use crate::providers::Provider;
use crate::queue::keys::{self, ProviderKeys, QueueKeys};
use crate::queue::options::Lane;
use crate::queue::replies::{self, Verdict};
use crate::queue::scripts;
use redis::AsyncCommands;
use serde::Serialize;
use std::collections::HashMap;

/// Jobs a cancel ends per script call.
const CANCEL_PER_CALL: usize = 500;

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// Its jobs are claimed in turn with the other bulk sources.
    Active,
    /// Its jobs stay queued, unclaimed, until it is resumed.
    Paused,
    /// Its jobs that had not started are cancelled; for good.
    Cancelled,
}

impl BatchState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Active => "active",
            BatchState::Paused => "paused",
            BatchState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> BatchState {
        match s {
            "paused" => BatchState::Paused,
            "cancelled" => BatchState::Cancelled,
            _ => BatchState::Active,
        }
    }
}

/// A batch and its counts.
#[derive(Debug, Clone, Serialize)]
pub struct BatchStatus {
    /// `batch_<ULID>`.
    pub id: String,
    /// What it was made from (e.g. the backfill's file name).
    pub label: String,
    /// When it was registered (Unix ms).
    pub created_ms: u64,
    /// Its state.
    pub state: BatchState,
    /// Jobs enqueued in it.
    pub enqueued: u64,
    /// Of those, due and waiting for their turn.
    pub queued: u64,
    /// Ended succeeded, dead, expired, cancelled.
    pub succeeded: u64,
    /// See `succeeded`.
    pub dead: u64,
    /// See `succeeded`.
    pub expired: u64,
    /// See `succeeded`.
    pub cancelled: u64,
    /// The rest: running, retrying, waiting for a parent or a code.
    pub in_flight: u64,
    /// Requests per second its providers allow in all (the ceiling of its rate), and how
    /// many bulk sources share them now (its fair share is one of them).
    pub provider_rate: f64,
    /// See `provider_rate`.
    pub bulk_sources: u64,
}

impl JobStore {
    /// Pauses or resumes claiming `kind` in every worker; `true` when that changed.
    pub async fn pause_kind(&self, kind: JobKind, paused: bool) -> Result<bool, QueueError> {
        let mut inv = self.script(&scripts::PAUSE_KIND, &QueueKeys::new(kind));
        inv.arg(if paused { "1" } else { "0" });
        let changed: i64 = self.run(inv).await?;
        Ok(changed == 1)
    }

    /// Registers a new batch labelled `label`; returns its id, the source its jobs carry.
    pub async fn create_batch(&self, label: &str) -> Result<String, QueueError> {
        let id = format!("batch_{}", ulid::Ulid::new());
        let mut conn = self.conn.clone();
        let created = now_ms();
        let _: () = redis::pipe()
            .hset_multiple(
                keys::batch(&id),
                &[
                    ("label", label.to_string()),
                    ("created_ms", created.to_string()),
                    ("state", "active".into()),
                ],
            )
            .zadd(keys::BATCHES, &id, created)
            .query_async(&mut conn)
            .await?;
        Ok(id)
    }

    /// The newest batches, newest first, with their counts.
    pub async fn batches(&self, limit: usize) -> Result<Vec<BatchStatus>, QueueError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrevrange(keys::BATCHES, 0, limit.max(1) as isize - 1)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.batch_status(&id).await {
                Ok(s) => out.push(s),
                Err(QueueError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One batch's state and counts, summed over its providers.
    pub async fn batch_status(&self, id: &str) -> Result<BatchStatus, QueueError> {
        let mut conn = self.conn.clone();
        let info: HashMap<String, String> = conn.hgetall(keys::batch(id)).await?;
        if info.is_empty() {
            return Err(QueueError::NotFound(id.to_string()));
        }
        let mut status = BatchStatus {
            id: id.to_string(),
            label: info.get("label").cloned().unwrap_or_default(),
            created_ms: info
                .get("created_ms")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            state: BatchState::parse(info.get("state").map_or("", String::as_str)),
            enqueued: 0,
            queued: 0,
            succeeded: 0,
            dead: 0,
            expired: 0,
            cancelled: 0,
            in_flight: 0,
            provider_rate: 0.0,
            bulk_sources: 0,
        };
        for provider in Provider::ALL {
            let pkeys = ProviderKeys::new(provider);
            let counts: HashMap<String, String> = conn.hgetall(pkeys.source(id)).await?;
            let count = |k: &str| {
                counts
                    .get(k)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if count("enqueued") == 0 {
                continue;
            }
            status.enqueued += count("enqueued");
            status.succeeded += count("succeeded");
            status.dead += count("dead");
            status.expired += count("expired");
            status.cancelled += count("cancelled");
            for kind in JobKind::ALL
                .into_iter()
                .filter(|k| k.provider() == provider)
            {
                let qkeys = QueueKeys::new(kind);
                for lane in Lane::ALL {
                    let n: u64 = conn.llen(qkeys.ready(lane, id)).await?;
                    status.queued += n;
                }
                if let Some(rate) = kind.action().limit.rate(&self.cfg.limits) {
                    status.provider_rate = status.provider_rate.max(rate);
                }
            }
            let ring: u64 = conn.llen(pkeys.ring(Lane::Bulk)).await?;
            status.bulk_sources = status.bulk_sources.max(ring);
        }
        let ended = status.succeeded + status.dead + status.expired + status.cancelled;
        status.in_flight = status.enqueued.saturating_sub(ended + status.queued);
        Ok(status)
    }

    /// Pauses (`Paused`) or resumes (`Active`) a batch at every provider; returns its state
    /// before. A cancelled batch stays cancelled (`WrongState`).
    pub async fn set_batch_state(
        &self,
        id: &str,
        state: BatchState,
    ) -> Result<BatchState, QueueError> {
        let before = self.batch_status(id).await?.state;
        if before == BatchState::Cancelled {
            return refused(
                id,
                Verdict::WrongState("cancelled".into()),
                "a cancelled batch cannot be paused or resumed",
            );
        }
        self.set_source_state(id, state).await?;
        let mut conn = self.conn.clone();
        let _: () = conn.hset(keys::batch(id), "state", state.as_str()).await?;
        Ok(before)
    }

    /// Cancels a batch: its jobs that had not started end `cancelled` (their idempotency
    /// keys released), its running jobs finish. Returns how many were cancelled.
    pub async fn cancel_batch(&self, id: &str) -> Result<u64, QueueError> {
        self.batch_status(id).await?;
        self.set_source_state(id, BatchState::Cancelled).await?;
        let mut conn = self.conn.clone();
        let _: () = conn.hset(keys::batch(id), "state", "cancelled").await?;
        let mut cancelled = 0;
        for kind in JobKind::ALL {
            loop {
                let mut inv = self.script(&scripts::CANCEL_BATCH, &QueueKeys::new(kind));
                inv.arg(id)
                    .arg(CANCEL_PER_CALL)
                    .arg(self.cfg.queue.retention_secs.max(1));
                let reply = replies::CancelReply::decode(&self.run_list(inv).await?)?;
                cancelled += reply.cancelled;
                self.resolve_children(&reply.dependents, &ParentOutcome::Cancelled)
                    .await?;
                if reply.cancelled == 0 || reply.remaining == 0 {
                    break;
                }
            }
        }
        Ok(cancelled)
    }

    /// Gives `source` `weight` turns per round within its lane at every provider (default
    /// 1): a batch of weight 2 goes twice as fast as one of weight 1 beside it.
    pub async fn set_source_weight(&self, source: &str, weight: u32) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        for provider in Provider::ALL {
            let _: () = conn
                .hset(ProviderKeys::new(provider).weights(), source, weight.max(1))
                .await?;
        }
        Ok(())
    }

    /// Sets a source's state at every provider (`source_state.lua`).
    async fn set_source_state(&self, source: &str, state: BatchState) -> Result<(), QueueError> {
        for provider in Provider::ALL {
            let kinds: Vec<JobKind> = JobKind::ALL
                .into_iter()
                .filter(|k| k.provider() == provider)
                .collect();
            let mut inv = self.script(&scripts::SOURCE_STATE, &QueueKeys::new(kinds[0]));
            inv.arg(source).arg(state.as_str()).arg(kinds.len());
            for kind in &kinds {
                inv.arg(kind.as_str());
            }
            let _: Vec<redis::Value> = self.run(inv).await?;
        }
        Ok(())
    }
}
