//! Enqueue: one job or many, with idempotency keys. See `enqueue.lua` for what one call
//! writes and why bulk enqueue is cheap. A key is stored with a keyed digest of its job's
//! payload (`queue::digest`), so the same key with another payload is refused
//! ([`QueueError::IdempotencyConflict`]); [`JobStore::check_keys`] asks beforehand, and
//! [`JobStore::job_for_idempotency_key`] names the job holding one key. How keys are kept:
//! `queue::idempotency`.

use super::pipelines::ProviderPipelines;
use super::{JobStore, QueueError, Unconfirmed};
use crate::jobs::{Job, JobKind};
use crate::queue::compact;
use crate::queue::idempotency;
use crate::queue::ids::new_job_id;
use crate::queue::keys::{source_name, QueueKeys};
use crate::queue::options::{EnqueueOptions, Enqueued, KeyCheck, Lane};
use crate::queue::replies::{self, EnqueueReply};
use crate::queue::scripts;
use redis::Value;
use std::collections::HashMap;

/// Jobs per script call: one call stays short for Redis.
const PER_CALL: usize = 500;
/// Jobs per pipeline of script calls.
const PER_PIPELINE: usize = 2_000;
/// Pipelines in flight at once.
const IN_FLIGHT: usize = 4;

impl JobStore {
    /// Enqueues one job, in the live lane unless its options say otherwise. Validation is
    /// the caller's (the producer validates every field).
    pub async fn enqueue(&self, job: &Job, opts: &EnqueueOptions) -> Result<Enqueued, QueueError> {
        let mut out = self
            .enqueue_in(
                std::slice::from_ref(&(job.clone(), opts.clone())),
                Lane::Live,
            )
            .await?;
        out.pop()
            .ok_or_else(|| QueueError::Protocol("enqueue returned nothing".into()))
    }

    /// Enqueues many jobs, in the bulk lane unless their options say otherwise.
    pub async fn enqueue_many(
        &self,
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<Enqueued>, QueueError> {
        self.enqueue_in(jobs, Lane::Bulk).await
    }

    /// Enqueues jobs grouped per queue, lane and source, up to [`PER_CALL`] per script call;
    /// `lane` is the lane of jobs whose options name none. Calls go out in pipelines of a few
    /// thousand jobs with several in flight, so encoding the next batch overlaps Redis
    /// running the previous one; they are sent in order, which keeps FIFO. Results come back
    /// in input order.
    async fn enqueue_in(
        &self,
        jobs: &[(Job, EnqueueOptions)],
        lane: Lane,
    ) -> Result<Vec<Enqueued>, QueueError> {
        use futures::{StreamExt, TryStreamExt};
        let mut groups: HashMap<Line, Vec<usize>> = HashMap::new();
        for (i, (job, opts)) in jobs.iter().enumerate() {
            let line = Line {
                kind: job.kind(),
                lane: opts.lane.unwrap_or(lane),
                source: source_name(opts.source.as_deref().unwrap_or("default")),
            };
            groups.entry(line).or_default().push(i);
        }
        // The calls as futures first, then a stream of them: a closure taking references
        // and returning a future (`stream.map(|..| async ..)`) would keep this future from
        // being provably `Send`, and an app could not spawn an enqueue.
        let mut calls = Vec::new();
        for (line, indexes) in &groups {
            for chunk in indexes.chunks(PER_PIPELINE) {
                calls.push(self.enqueue_batch(line, chunk, jobs));
            }
        }
        let done: Vec<Vec<(usize, EnqueueReply)>> = futures::stream::iter(calls)
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut out: Vec<Option<EnqueueReply>> = vec![None; jobs.len()];
        for (slot, reply) in done.into_iter().flatten() {
            out[slot] = Some(reply);
        }
        let out: Vec<EnqueueReply> = out
            .into_iter()
            .map(|e| e.ok_or_else(|| QueueError::Protocol("missing enqueue reply".into())))
            .collect::<Result<_, _>>()?;
        // Register new children with their parents (a parent may already have ended).
        let children: Vec<(JobKind, &str, &str)> = jobs
            .iter()
            .zip(&out)
            .filter_map(
                |((job, opts), reply)| match (reply, opts.depends_on.as_deref()) {
                    (EnqueueReply::New(id), Some(parent)) => {
                        Some((job.kind(), id.as_str(), parent))
                    }
                    _ => None,
                },
            )
            .collect();
        self.link_dependencies(&children).await?;
        out.into_iter()
            .enumerate()
            .map(|(index, reply)| match reply {
                EnqueueReply::New(id) => Ok(Enqueued {
                    id,
                    duplicate: false,
                }),
                EnqueueReply::Duplicate(id) => Ok(Enqueued {
                    id,
                    duplicate: true,
                }),
                EnqueueReply::Conflict { first_id, state } => {
                    Err(QueueError::IdempotencyConflict {
                        index,
                        first_id,
                        state,
                    })
                }
            })
            .collect()
    }

    /// What enqueuing each job with its key would do, without writing anything: unused,
    /// held by a job with the same payload, or held by a job with another payload (and that
    /// job's state). A backfill asks this first so that a rerun whose rows changed enqueues
    /// nothing. One MGET per few thousand keys of a queue (they share its hash tag).
    pub async fn check_keys(
        &self,
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<KeyCheck>, QueueError> {
        let mut out = vec![KeyCheck::Unused; jobs.len()];
        let mut by_kind: HashMap<JobKind, Vec<usize>> = HashMap::new();
        for (i, (job, opts)) in jobs.iter().enumerate() {
            if opts.idempotency_key.is_some() {
                by_kind.entry(job.kind()).or_default().push(i);
            }
        }
        let mut pipes = ProviderPipelines::default();
        let mut asked: Vec<&[usize]> = Vec::new();
        for (kind, indexes) in &by_kind {
            let keys = QueueKeys::new(*kind);
            for chunk in indexes.chunks(PER_PIPELINE) {
                let mut inv = self.script(&scripts::IDEM_LOOKUP, &keys);
                for &i in chunk {
                    if let Some(k) = jobs[i].1.idempotency_key.as_deref() {
                        inv.arg(&idempotency::hash(*kind, k)[..]);
                    }
                }
                pipes.next(kind.provider()).invoke_script(&inv);
                asked.push(chunk);
            }
        }
        if asked.is_empty() {
            return Ok(out);
        }
        let replies: Vec<Vec<Value>> = self.query_by_provider(pipes).await?;
        let mut changed: Vec<usize> = Vec::new();
        for (chunk, reply) in asked.into_iter().zip(replies) {
            for (&i, holder) in chunk
                .iter()
                .zip(replies::idem_holders(&reply, chunk.len())?)
            {
                let Some((first_id, digest)) = holder else {
                    continue;
                };
                let same = match digest {
                    None => true,
                    Some(d) => self.digest.matches(&d, &payload(&jobs[i].0)?),
                };
                out[i] = if same {
                    KeyCheck::Same { first_id }
                } else {
                    changed.push(i);
                    KeyCheck::Changed {
                        first_id,
                        state: String::new(),
                    }
                };
            }
        }
        self.fill_states(&mut out, &changed).await?;
        Ok(out)
    }

    /// The id of the job holding idempotency key `key` of `kind` (the key an enqueue's
    /// `EnqueueOptions::idempotency_key` gave; a backfill's is `<kind>:<natural key>`, see
    /// the producer's `Work`), or `None` when the key is unused: never used, released
    /// (its batch was cancelled, its dead job purged) or expired with its job's record.
    pub async fn job_for_idempotency_key(
        &self,
        kind: JobKind,
        key: &str,
    ) -> Result<Option<String>, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut inv = self.script(&scripts::IDEM_LOOKUP, &keys);
        inv.arg(&idempotency::hash(kind, key)[..]);
        let reply: Vec<Value> = self.run(inv).await?;
        let holder = replies::idem_holders(&reply, 1)?.pop().flatten();
        Ok(holder.map(|(id, _)| id))
    }

    /// Deletes idempotency entries of `kind` whose jobs' records have expired, looking at
    /// `buckets` of the queue's buckets from where the last call (any worker's) stopped;
    /// returns how many it deleted. Lookups already count such entries as absent: this
    /// only gives their memory back (see `queue::idempotency`).
    pub async fn sweep_idempotency_keys(
        &self,
        kind: JobKind,
        buckets: u16,
    ) -> Result<u64, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut inv = self.script(&scripts::SWEEP_IDEM, &keys);
        inv.arg(buckets);
        let (removed, _next): (u64, u64) = self.run(inv).await?;
        Ok(removed)
    }

    /// The states of the first jobs of changed keys (a report only: read, not locked).
    async fn fill_states(&self, out: &mut [KeyCheck], changed: &[usize]) -> Result<(), QueueError> {
        if changed.is_empty() {
            return Ok(());
        }
        let mut pipes = ProviderPipelines::default();
        for &i in changed {
            if let KeyCheck::Changed { first_id, .. } = &out[i] {
                let keys = self.keys_for(first_id)?;
                let provider = keys.kind().provider();
                pipes.next(provider).hget(keys.job(first_id), "state");
                pipes.next(provider).hexists(keys.pending(), first_id);
            }
        }
        let answers: Vec<Value> = self.query_by_provider(pipes).await?;
        let pairs = answers.chunks(2).map(|pair| {
            let state: Option<String> = redis::from_redis_value(pair[0].clone()).ok().flatten();
            let pending: bool = pair
                .get(1)
                .and_then(|v| redis::from_redis_value(v.clone()).ok())
                .unwrap_or(false);
            (state, pending)
        });
        for (&i, (state, pending)) in changed.iter().zip(pairs) {
            if let KeyCheck::Changed { state: slot, .. } = &mut out[i] {
                *slot = match (state, pending) {
                    (Some(s), _) => s,
                    (None, true) => "queued".into(),
                    (None, false) => "missing".into(),
                };
            }
        }
        Ok(())
    }

    /// One pipeline of enqueue script calls for jobs `indexes` of one line.
    async fn enqueue_batch(
        &self,
        line: &Line,
        indexes: &[usize],
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<(usize, EnqueueReply)>, QueueError> {
        let kind = line.kind;
        let keys = QueueKeys::new(kind);
        let mut pipe = redis::pipe();
        for chunk in indexes.chunks(PER_CALL) {
            let mut inv = self.script(&scripts::ENQUEUE, &keys);
            inv.arg(chunk.len())
                .arg(line.lane.as_str())
                .arg(&line.source);
            for &i in chunk {
                let (job, opts) = &jobs[i];
                let payload = payload(job)?;
                let (key, digest) = match opts.idempotency_key.as_deref() {
                    Some(k) => (
                        idempotency::hash(kind, k).to_vec(),
                        self.digest.all_of(&payload),
                    ),
                    None => (Vec::new(), Vec::new()),
                };
                inv.arg(new_job_id(kind))
                    .arg(self.cipher.seal(&compact::pack(&payload)))
                    .arg(self.max_attempts(kind, opts))
                    .arg(opts.run_at_ms.unwrap_or(0))
                    .arg(opts.depends_on.as_deref().unwrap_or(""))
                    .arg(key)
                    .arg(digest);
            }
            pipe.invoke_script(&inv);
        }
        let replies = self.query_durable(&mut pipe, Unconfirmed::Fail).await?;
        let mut out = Vec::with_capacity(indexes.len());
        for (chunk, reply) in indexes.chunks(PER_CALL).zip(replies) {
            let reply: Vec<Value> = redis::from_redis_value(reply)
                .map_err(|e| QueueError::Protocol(format!("enqueue reply: {e}")))?;
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

/// Where a group of jobs waits: its queue, lane and source (one ready list).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Line {
    kind: JobKind,
    lane: Lane,
    source: String,
}

/// A job's payload as stored (sealed) and digested: its JSON.
fn payload(job: &Job) -> Result<Vec<u8>, QueueError> {
    serde_json::to_vec(job).map_err(|e| QueueError::Protocol(format!("encode job: {e}")))
}
