//! The producer library: how other Rust apps put work into onboard and follow it.
//!
//! Every job is validated before anything is written; a batch with one invalid job writes
//! nothing. Results are followed through the `onboard:events` stream (a blocking read),
//! never by polling.

use crate::work::{Work, WorkEnqueued, WorkKeys, WorkOptions};
use onboard_shared::config::Config;
use onboard_shared::events::EventFollower;
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::{
    EnqueueOptions, Enqueued, JobState, JobStatus, JobStore, KeyCheck, QueueError, QueueStats,
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

/// What enqueuing one unit of work would do ([`Producer::check_work`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkCheck {
    /// At least one of its jobs would be new.
    New,
    /// Every job's key holds a job with the same payload: nothing would be enqueued.
    Unchanged {
        /// The first job's id (its parent's, for a customer to onboard).
        first_id: Option<String>,
    },
    /// A key holds a job with another payload: the enqueue would be refused.
    Changed {
        /// The kind of the job whose payload changed.
        kind: JobKind,
        /// The job that holds the key.
        first_id: String,
        /// Its state.
        state: String,
    },
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
    /// enqueued and the error names its index. A job whose idempotency key holds another
    /// payload is refused (`QueueError::IdempotencyConflict`, naming its index and the first
    /// job); the others of the call are enqueued (ask [`Producer::check_work`] first for
    /// all or nothing).
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

    /// Validates and enqueues units of work: a customer to onboard becomes its
    /// `create-customer` job and a `bind-devices` job that waits for it (the child names the
    /// id its parent really has: the FIRST job's id when the parent was enqueued before).
    /// Returns one answer per job of each unit, parent first.
    pub async fn enqueue_work(
        &self,
        work: Vec<Work>,
        keys: &WorkOptions,
    ) -> Result<Vec<WorkEnqueued>, ProducerError> {
        // Parents (and plain jobs) first, in one batch; then the children, in another.
        let mut first: Vec<(Job, EnqueueOptions)> = Vec::with_capacity(work.len());
        let mut children: Vec<(usize, Job)> = Vec::new();
        for unit in work {
            match unit {
                Work::Job(job) => {
                    let opts = keys.options(&job, None);
                    first.push((job, opts));
                }
                Work::OnboardCustomer { customer, devices } => {
                    let parent = Job::CreateCustomer(customer);
                    let opts = keys.options(&parent, None);
                    children.push((first.len(), Job::BindDevices(devices)));
                    first.push((parent, opts));
                }
            }
        }
        let parents = self.enqueue_many(&first).await?;
        let second: Vec<(Job, EnqueueOptions)> = children
            .iter()
            .map(|(parent_at, job)| {
                let opts = keys.options(job, Some(parents[*parent_at].id.clone()));
                (job.clone(), opts)
            })
            .collect();
        let mut out: Vec<WorkEnqueued> = parents.into_iter().map(|e| vec![e]).collect();
        if !second.is_empty() {
            let enqueued = self.enqueue_many(&second).await?;
            for ((parent_at, _), child) in children.iter().zip(enqueued) {
                out[*parent_at].push(child);
            }
        }
        Ok(out)
    }

    /// What enqueuing each unit of work with `keys` would do, writing nothing: a backfill
    /// asks first, so that a rerun whose rows changed enqueues nothing (a changed row's key
    /// would be refused as an idempotency conflict). No keys: every unit is new.
    pub async fn check_work(
        &self,
        work: &[Work],
        keys: WorkKeys,
    ) -> Result<Vec<WorkCheck>, ProducerError> {
        let mut jobs: Vec<(Job, EnqueueOptions)> = Vec::with_capacity(work.len());
        let mut owner: Vec<usize> = Vec::with_capacity(work.len());
        for (unit, w) in work.iter().enumerate() {
            let unit_jobs = match w {
                Work::Job(job) => vec![job.clone()],
                Work::OnboardCustomer { customer, devices } => vec![
                    Job::CreateCustomer(customer.clone()),
                    Job::BindDevices(devices.clone()),
                ],
            };
            for job in unit_jobs {
                let opts = EnqueueOptions {
                    idempotency_key: keys.key_of(&job),
                    ..Default::default()
                };
                jobs.push((job, opts));
                owner.push(unit);
            }
        }
        let checks = self.store.check_keys(&jobs).await?;
        let mut out: Vec<WorkCheck> = Vec::with_capacity(work.len());
        for ((unit, check), (job, _)) in owner.into_iter().zip(checks).zip(&jobs) {
            if out.len() == unit {
                out.push(WorkCheck::Unchanged { first_id: None });
            }
            let slot = &mut out[unit];
            match (check, &*slot) {
                (_, WorkCheck::Changed { .. }) => {}
                (KeyCheck::Changed { first_id, state }, _) => {
                    *slot = WorkCheck::Changed {
                        kind: job.kind(),
                        first_id,
                        state,
                    }
                }
                (KeyCheck::Unused, _) => *slot = WorkCheck::New,
                (KeyCheck::Same { first_id }, WorkCheck::Unchanged { first_id: None }) => {
                    *slot = WorkCheck::Unchanged {
                        first_id: Some(first_id),
                    }
                }
                (KeyCheck::Same { .. }, _) => {}
            }
        }
        Ok(out)
    }

    /// One job's status; secret result fields only when `reveal_secrets`.
    pub async fn status(&self, id: &str, reveal_secrets: bool) -> Result<JobStatus, ProducerError> {
        Ok(self.store.status(id, reveal_secrets).await?)
    }

    /// Waits until the job reaches `succeeded`, `dead`, `expired` or `awaiting_code`,
    /// following the events stream.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<JobStatus, ProducerError> {
        self.wait_until(id, timeout, |s| s.state.is_settled()).await
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
