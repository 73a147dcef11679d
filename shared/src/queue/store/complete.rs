//! Recording an attempt's outcome, checked against the lease token: one at a time
//! (`ack.lua`), or the successes of many jobs in one call (`ack_succeeded.lua`). When a job
//! ends, its dependents are resolved in their own queues.

use super::dependencies::ParentOutcome;
use super::{JobStore, QueueError, Unconfirmed};
use crate::jobs::JobKind;
use crate::queue::ack::{Ack, AckStatus};
use crate::queue::keys::QueueKeys;
use crate::queue::replies::AckReply;
use crate::queue::scripts;

impl JobStore {
    /// Records an attempt's outcome (checked against the lease token) and resolves the
    /// job's dependents when it ended.
    pub async fn ack(
        &self,
        kind: JobKind,
        id: &str,
        token: &str,
        ack: &Ack,
    ) -> Result<AckStatus, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut inv = self.script(&scripts::ACK, &keys);
        inv.arg(id).arg(token);
        match ack {
            Ack::Succeeded(result) => {
                let statuses = self.ack_succeeded(kind, &[(id, token, result)]).await?;
                return statuses
                    .into_iter()
                    .next()
                    .ok_or_else(|| QueueError::Protocol("empty ack reply".into()));
            }
            Ack::Retry {
                delay_ms,
                error,
                uncertain,
            } => {
                inv.arg("retry")
                    .arg(*delay_ms)
                    .arg(error.to_json())
                    .arg(if *uncertain { "1" } else { "0" });
            }
            Ack::Defer { delay_ms, error } => {
                inv.arg("defer").arg(*delay_ms).arg(error.to_json());
            }
            Ack::Dead(error) => {
                inv.arg("dead").arg(error.to_json());
            }
            Ack::AwaitCode {
                code_lifetime_ms,
                masked_phone,
            } => {
                inv.arg("await_code")
                    .arg(*code_lifetime_ms)
                    .arg(masked_phone);
            }
            Ack::CodeRejected {
                code_lifetime_ms,
                max_failures,
                error,
            } => {
                inv.arg("code_rejected")
                    .arg(*code_lifetime_ms)
                    .arg(*max_failures)
                    .arg(error.to_json());
            }
            Ack::Release => {
                inv.arg("release");
            }
            Ack::Unstarted => {
                inv.arg("unstarted");
            }
        }
        let reply = AckReply::decode(&self.run_durable(inv, Unconfirmed::Count).await?)?;
        if reply.status == AckStatus::Dead {
            let why = format!("parent {id} failed");
            self.resolve_children(&reply.dependents, &ParentOutcome::Failed(why))
                .await?;
        }
        Ok(reply.status)
    }

    /// Records the successes of jobs `(id, lease token, result)` of one queue with one
    /// script call, and lets their dependents run. Returns each job's status, in order:
    /// `Succeeded`, or `Stale` when its lease had been lost.
    pub async fn ack_succeeded(
        &self,
        kind: JobKind,
        jobs: &[(&str, &str, &serde_json::Value)],
    ) -> Result<Vec<AckStatus>, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut inv = self.script(&scripts::ACK_SUCCEEDED, &keys);
        inv.arg(self.cfg.queue.retention_secs.max(1))
            .arg(jobs.len());
        for (id, token, result) in jobs {
            let plain = serde_json::to_vec(result)
                .map_err(|e| QueueError::Protocol(format!("encode result: {e}")))?;
            inv.arg(*id).arg(*token).arg(self.cipher.seal(&plain));
        }
        let replies = AckReply::decode_batch(
            &self.run_durable(inv, Unconfirmed::Count).await?,
            jobs.len(),
        )?;
        let mut statuses = Vec::with_capacity(jobs.len());
        for ((id, _, _), reply) in jobs.iter().zip(replies) {
            if reply.status == AckStatus::Succeeded {
                // The success is recorded whatever happens next: a child not resolved here
                // is found by the sweeper's check of waiting jobs.
                if let Err(e) = self
                    .resolve_children(&reply.dependents, &ParentOutcome::Succeeded)
                    .await
                {
                    tracing::warn!(job_id = %id, error = %e, "dependents not resolved yet; the sweeper will");
                }
            }
            statuses.push(reply.status);
        }
        Ok(statuses)
    }
}
