//! The producer library: how other Rust apps put work into onboard and follow it.
//!
//! Every job is validated before anything is written; a batch with one invalid job writes
//! nothing. Results are followed through the `onboard:events` stream (a blocking read),
//! never by polling.

use onboard_shared::config::Config;
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::keys::EVENTS_KEY;
use onboard_shared::queue::{
    EnqueueOptions, Enqueued, JobState, JobStatus, JobStore, QueueError, QueueStats,
};
use onboard_shared::secret::Secret;
use onboard_shared::validation::{Validate, ValidationErrors};
use std::time::{Duration, Instant};

/// Why a producer call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// A job failed validation; nothing was enqueued.
    #[error("invalid {kind} job{at}: {errors}")]
    Invalid {
        /// The job's kind.
        kind: JobKind,
        /// " at index N" in a batch, else empty.
        at: String,
        /// Every field at fault.
        errors: ValidationErrors,
    },
    /// The queue failed (Redis unreachable, unknown job, wrong state, ...).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// `wait` ran out of time; the job's last known status is attached.
    #[error("job {} still {} after {timeout:?}", .status.id, .status.state)]
    Timeout {
        /// Last known status.
        status: Box<JobStatus>,
        /// How long we waited.
        timeout: Duration,
    },
}

impl ProducerError {
    /// True when the failure is the infrastructure's (Redis), not the caller's input.
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self,
            ProducerError::Queue(QueueError::Redis(_))
                | ProducerError::Queue(QueueError::Protocol(_))
        )
    }
}

/// A handle on the queues. Clone freely.
#[derive(Clone, Debug)]
pub struct Producer {
    store: JobStore,
}

impl Producer {
    /// Connects to the Redis the configuration names.
    pub async fn connect(cfg: &Config) -> Result<Producer, ProducerError> {
        Ok(Producer {
            store: JobStore::connect(cfg).await?,
        })
    }

    /// The underlying store (for tools that need more than this API).
    pub fn store(&self) -> &JobStore {
        &self.store
    }

    /// Validates and enqueues one job.
    pub async fn enqueue(
        &self,
        job: &Job,
        opts: &EnqueueOptions,
    ) -> Result<Enqueued, ProducerError> {
        job.validate().map_err(|errors| ProducerError::Invalid {
            kind: job.kind(),
            at: String::new(),
            errors,
        })?;
        Ok(self.store.enqueue(job, opts).await?)
    }

    /// Validates every job, then enqueues them all pipelined. One invalid job: nothing is
    /// enqueued and the error names its index.
    pub async fn enqueue_many(
        &self,
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<Enqueued>, ProducerError> {
        for (i, (job, _)) in jobs.iter().enumerate() {
            job.validate().map_err(|errors| ProducerError::Invalid {
                kind: job.kind(),
                at: format!(" at index {i}"),
                errors,
            })?;
        }
        Ok(self.store.enqueue_many(jobs).await?)
    }

    /// One job's status; secret result fields only when `reveal_secrets`.
    pub async fn status(&self, id: &str, reveal_secrets: bool) -> Result<JobStatus, ProducerError> {
        Ok(self.store.status(id, reveal_secrets).await?)
    }

    /// Waits until the job reaches `succeeded`, `dead`, `expired` or `awaiting_code`,
    /// following the events stream.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<JobStatus, ProducerError> {
        self.wait_until(id, timeout, |s| {
            s.state.is_final() || s.state == JobState::AwaitingCode
        })
        .await
    }

    /// Waits until the job's status satisfies `done`, following the events stream.
    ///
    /// Rides out a Redis restart or failover: on a connection error it reconnects and looks
    /// again until the timeout, so a caller waiting on a long job is not failed by a blip.
    pub async fn wait_until(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&JobStatus) -> bool,
    ) -> Result<JobStatus, ProducerError> {
        const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
        let deadline = Instant::now() + timeout;
        let mut follower: Option<EventFollower> = None;
        loop {
            match self
                .wait_round(id, &done, &mut follower, deadline, timeout)
                .await
            {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => {}
                Err(e) if e.is_infrastructure() && Instant::now() < deadline => {
                    tracing::debug!(error = %e, "lost Redis while waiting; reconnecting");
                    follower = None;
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(RECONNECT_PAUSE.min(left)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One round of [`Producer::wait_until`]: subscribe if needed, check, wait for events.
    async fn wait_round(
        &self,
        id: &str,
        done: &impl Fn(&JobStatus) -> bool,
        follower: &mut Option<EventFollower>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<JobStatus>, ProducerError> {
        let follower = match follower {
            Some(f) => f,
            None => follower.insert(EventFollower::from_now(&self.store).await?),
        };
        // Checked after subscribing, so no change between the two can be missed.
        let status = self.store.status(id, false).await?;
        if done(&status) {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProducerError::Timeout {
                status: Box::new(status),
                timeout,
            });
        }
        follower
            .next_batch(left.min(Duration::from_secs(1)))
            .await?;
        Ok(None)
    }

    /// Hands a 6-digit verify code to a `create-account` job awaiting one.
    pub async fn supply_code(&self, id: &str, code: &Secret) -> Result<(), ProducerError> {
        Ok(self.store.supply_code(id, code).await?)
    }

    /// Sends an `expired` or `awaiting_code` job back through phase 1 (a new code).
    pub async fn resend_code(&self, id: &str) -> Result<(), ProducerError> {
        Ok(self.store.resend_code(id).await?)
    }

    /// Dead jobs of one kind, oldest first.
    pub async fn dead_letters(
        &self,
        kind: JobKind,
        limit: usize,
    ) -> Result<Vec<JobStatus>, ProducerError> {
        Ok(self.store.dead_letters(kind, limit).await?)
    }

    /// Brings dead jobs back; stops at the first that cannot be retried.
    pub async fn retry_dead(&self, ids: &[String]) -> Result<Vec<JobState>, ProducerError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.store.retry_dead(id).await?);
        }
        Ok(out)
    }

    /// Deletes dead jobs for good; stops at the first that is not dead.
    pub async fn purge_dead(&self, ids: &[String]) -> Result<(), ProducerError> {
        for id in ids {
            self.store.purge_dead(id).await?;
        }
        Ok(())
    }

    /// Jobs per state for every queue.
    pub async fn stats(&self) -> Result<Vec<QueueStats>, ProducerError> {
        Ok(self.store.stats().await?)
    }
}

/// One entry of the events stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    /// Stream entry id.
    pub id: String,
    /// Every field of the entry (`job_id`, `kind`, `state`, `at_ms`, and extras).
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Reads the events stream with blocking reads on a connection of its own (no response
/// timeout: a blocking read on the shared connection would time out and stall it).
pub struct EventFollower {
    conn: redis::aio::MultiplexedConnection,
    last_id: String,
}

impl EventFollower {
    /// Follows events written from now on.
    pub async fn from_now(store: &JobStore) -> Result<EventFollower, ProducerError> {
        Self::from_id(store, "$").await
    }

    /// Follows events after stream id `last_id` (`0` for the whole stream, `$` for now).
    pub async fn from_id(store: &JobStore, last_id: &str) -> Result<EventFollower, ProducerError> {
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let mut conn = store
            .client()
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(QueueError::from)?;
        let last_id = if last_id == "$" {
            // Resolve "$" to a concrete id now, so nothing between calls is skipped.
            let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(EVENTS_KEY)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await
                .map_err(QueueError::from)?;
            last.ids
                .first()
                .map(|e| e.id.clone())
                .unwrap_or_else(|| "0".into())
        } else {
            last_id.to_string()
        };
        Ok(EventFollower { conn, last_id })
    }

    /// The next events, waiting up to `block` for at least one.
    pub async fn next_batch(&mut self, block: Duration) -> Result<Vec<Event>, ProducerError> {
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("COUNT")
            .arg(1000)
            .arg("STREAMS")
            .arg(EVENTS_KEY)
            .arg(&self.last_id)
            .query_async(&mut self.conn)
            .await
            .map_err(QueueError::from)?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                self.last_id = entry.id.clone();
                let fields = entry
                    .map
                    .iter()
                    .filter_map(|(k, v)| {
                        redis::from_redis_value::<String>(v.clone())
                            .ok()
                            .map(|v| (k.clone(), v))
                    })
                    .collect();
                out.push(Event {
                    id: entry.id,
                    fields,
                });
            }
        }
        Ok(out)
    }
}
