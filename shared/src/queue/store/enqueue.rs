//! Enqueue: one job or many, with idempotency keys. See `enqueue.lua` for what one call
//! writes and why bulk enqueue is cheap.

use super::{JobStore, QueueError};
use crate::jobs::{Job, JobKind};
use crate::queue::ids::new_job_id;
use crate::queue::keys::QueueKeys;
use crate::queue::options::{EnqueueOptions, Enqueued};
use crate::queue::{replies, scripts};
use redis::Value;
use std::collections::HashMap;

/// Jobs per script call: one call stays short for Redis.
const PER_CALL: usize = 500;
/// Jobs per pipeline of script calls.
const PER_PIPELINE: usize = 2_000;
/// Pipelines in flight at once.
const IN_FLIGHT: usize = 4;

impl JobStore {
    /// Enqueues one job. Validation is the caller's (the producer validates every field).
    pub async fn enqueue(&self, job: &Job, opts: &EnqueueOptions) -> Result<Enqueued, QueueError> {
        let mut out = self
            .enqueue_many(std::slice::from_ref(&(job.clone(), opts.clone())))
            .await?;
        out.pop()
            .ok_or_else(|| QueueError::Protocol("enqueue returned nothing".into()))
    }

    /// Enqueues many jobs, grouped per queue, up to [`PER_CALL`] per script call. Calls go
    /// out in pipelines of a few thousand jobs with several in flight, so encoding the next
    /// batch overlaps Redis running the previous one; they are sent in order, which keeps
    /// FIFO. Results come back in input order.
    pub async fn enqueue_many(
        &self,
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<Enqueued>, QueueError> {
        use futures::{StreamExt, TryStreamExt};
        let mut by_kind: HashMap<JobKind, Vec<usize>> = HashMap::new();
        for (i, (job, _)) in jobs.iter().enumerate() {
            by_kind.entry(job.kind()).or_default().push(i);
        }
        let batches: Vec<(JobKind, &[usize])> = by_kind
            .iter()
            .flat_map(|(kind, indexes)| indexes.chunks(PER_PIPELINE).map(move |c| (*kind, c)))
            .collect();
        let done: Vec<Vec<(usize, Enqueued)>> = futures::stream::iter(batches)
            .map(|(kind, indexes)| self.enqueue_batch(kind, indexes, jobs))
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut out: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        for (slot, enqueued) in done.into_iter().flatten() {
            out[slot] = Some(enqueued);
        }
        let out: Vec<Enqueued> = out
            .into_iter()
            .map(|e| e.ok_or_else(|| QueueError::Protocol("missing enqueue reply".into())))
            .collect::<Result<_, _>>()?;
        // Register new children with their parents (a parent may already have ended).
        let children: Vec<(JobKind, &str, &str)> = jobs
            .iter()
            .zip(&out)
            .filter(|(_, enq)| !enq.duplicate)
            .filter_map(|((job, opts), enq)| {
                opts.depends_on
                    .as_deref()
                    .map(|parent| (job.kind(), enq.id.as_str(), parent))
            })
            .collect();
        self.link_dependencies(&children).await?;
        Ok(out)
    }

    /// One pipeline of enqueue script calls for jobs `indexes` of one kind.
    async fn enqueue_batch(
        &self,
        kind: JobKind,
        indexes: &[usize],
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<(usize, Enqueued)>, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut pipe = redis::pipe();
        for chunk in indexes.chunks(PER_CALL) {
            let mut inv = self.script(&scripts::ENQUEUE, &keys);
            inv.arg(chunk.len());
            for &i in chunk {
                let (job, opts) = &jobs[i];
                let payload = serde_json::to_vec(job)
                    .map_err(|e| QueueError::Protocol(format!("encode job: {e}")))?;
                inv.arg(new_job_id(kind))
                    .arg(self.cipher.seal(&payload))
                    .arg(self.max_attempts(kind, opts))
                    .arg(opts.run_at_ms.unwrap_or(0))
                    .arg(opts.depends_on.as_deref().unwrap_or(""))
                    .arg(
                        opts.idempotency_key
                            .as_deref()
                            .map(|k| hash_idempotency_key(kind, k))
                            .unwrap_or_default(),
                    );
            }
            pipe.invoke_script(&inv);
        }
        let replies: Vec<Vec<Value>> = self.query_pipeline(&pipe).await?;
        let mut out = Vec::with_capacity(indexes.len());
        for (chunk, reply) in indexes.chunks(PER_CALL).zip(replies) {
            let enqueued = replies::enqueued(&reply, chunk.len())?;
            out.extend(chunk.iter().copied().zip(enqueued));
        }
        Ok(out)
    }

    fn max_attempts(&self, kind: JobKind, opts: &EnqueueOptions) -> u32 {
        opts.max_attempts
            .unwrap_or_else(|| self.cfg.queue.max_attempts.get(kind))
            .max(1)
    }
}

/// The idempotency key as stored: hashed, so that natural keys (e-mails, phone numbers)
/// never appear in key names.
fn hash_idempotency_key(kind: JobKind, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\0{}", kind.as_str(), key).as_bytes());
    hex::encode(&digest[..16])
}
