//! The backend's tower layer: runs each job under its lease and records its outcome.
//!
//! It sits between apalis and the handler (`BackendConfig::Layer`), so it sees the
//! handler's real result, including a panic turned into an error by `catch_panic`. While
//! the handler runs, and then until its outcome is written, the lease is renewed every
//! third of its length; when the handler ends, its slot is free and ONE script records
//! the outcome (checked against the lease token; successes that
//! end together share one call, see [`super::ack_batcher`]). If the shutdown deadline
//! passes first, the job is handed straight back to the queue.

use super::ack_batcher::AckBatcher;
use super::outcome::{JobOutcome, OutcomePolicy};
use super::slots::Slots;
use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use futures::future::BoxFuture;
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{Ack, AckStatus, ClaimedJob, JobStore};
use onboard_shared::ErrorClass;
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tower::{Layer, Service};

/// See the module documentation.
#[derive(Clone)]
pub struct AckLayer {
    inner: Arc<AckContext>,
}

struct AckContext {
    store: JobStore,
    /// One batcher per kind: successes are recorded per queue.
    successes: HashMap<JobKind, AckBatcher>,
    slots: Arc<Slots>,
    policy: OutcomePolicy,
    hard_stop: watch::Receiver<bool>,
}

impl AckLayer {
    /// A layer recording outcomes in `store`.
    pub fn new(
        store: JobStore,
        kinds: &[JobKind],
        slots: Arc<Slots>,
        policy: OutcomePolicy,
        hard_stop: watch::Receiver<bool>,
    ) -> Self {
        AckLayer {
            inner: Arc::new(AckContext {
                successes: kinds
                    .iter()
                    .map(|k| (*k, AckBatcher::new(store.clone(), *k)))
                    .collect(),
                store,
                slots,
                policy,
                hard_stop,
            }),
        }
    }
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;
    fn layer(&self, inner: S) -> AckService<S> {
        AckService {
            inner,
            ctx: self.inner.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct AckService<S> {
    inner: S,
    ctx: Arc<AckContext>,
}

impl<S> Service<Task<ClaimedJob>> for AckService<S>
where
    S: Service<Task<ClaimedJob>, Response = JobOutcome>,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError> + Send,
{
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxDynError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<ClaimedJob>) -> Self::Future {
        let job = task.args.clone();
        let handler = self.inner.call(task);
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let started = Instant::now();
            let kind = job.kind().as_str();
            let lane = job.lane.as_str();
            // From its enqueue to its reserved request slot: what lanes and fair shares
            // are for (the request itself goes at the slot, see the handlers' gate).
            let until_slot = job
                .slot
                .map(|s| s.at.saturating_duration_since(started))
                .unwrap_or_default();
            metrics::counter!("onboard_job_starts_total", "kind" => kind, "lane" => lane)
                .increment(1);
            metrics::histogram!("onboard_job_wait_seconds", "kind" => kind, "lane" => lane)
                .record(job.waited_ms as f64 / 1000.0 + until_slot.as_secs_f64());
            let ack = tokio::select! {
                result = handler => {
                    let result = result.map_err(Into::into);
                    ctx.policy.ack_for(&job, result.as_ref().map(Clone::clone).map_err(|e| e.as_ref() as &(dyn std::error::Error + 'static)))
                }
                _ = ctx.renew_until_lost(&job) => unreachable!("renewal runs until the handler ends"),
                _ = wait_true(ctx.hard_stop.clone()) => Ack::Release,
            };
            metrics::histogram!("onboard_job_duration_seconds", "kind" => kind)
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("onboard_job_attempts_total", "kind" => kind, "result" => attempt_label(&ack))
                .increment(1);
            // The slot is free once the handler has ended; the write overlaps the next claim.
            // The lease is renewed until the outcome is written: outcomes wait for the
            // batch ahead of them, and one whose lease ran out would be claimed again.
            let _recording = ctx.slots.ended();
            tokio::select! {
                _ = ctx.record(&job, &ack) => {}
                _ = ctx.renew_until_lost(&job) => unreachable!("renewal runs until the write ends"),
            }
            Ok(())
        })
    }
}

fn attempt_label(ack: &Ack) -> &'static str {
    match ack {
        Ack::Succeeded(_) | Ack::AwaitCode { .. } => "ok",
        Ack::Retry {
            uncertain: true, ..
        } => "outcome_unknown",
        Ack::Retry { .. } => "transient",
        Ack::Defer { .. } => "throttled",
        Ack::Dead(e) if e.class == ErrorClass::Permanent => "permanent",
        Ack::Dead(_) => "dead",
        Ack::CodeRejected { .. } => "code_rejected",
        Ack::Release | Ack::Unstarted => "released",
    }
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How often a held lease is renewed: every third of its length (at least every 100 ms),
/// for a running job here and for one claimed ahead ([`super::claimed_ahead`]).
pub(super) fn renewal_interval(lease_ms: u64) -> Duration {
    Duration::from_millis((lease_ms / 3).max(100))
}

impl AckContext {
    /// Renews the lease every third of its length, while the handler runs and then while its
    /// outcome is being written; returns never (it parks once the lease is lost, leaving
    /// the handler or the write to finish; its ack will be refused as stale, and one written
    /// already ends the lease, so a renewal after it finds the lease gone).
    async fn renew_until_lost(&self, job: &ClaimedJob) {
        let every = renewal_interval(self.store.config().queue.lease_ms);
        loop {
            tokio::time::sleep(every).await;
            match self.store.renew(job.kind(), &job.id, &job.token).await {
                Ok(true) => metrics::counter!("onboard_worker_leases_renewed_total").increment(1),
                Ok(false) => {
                    tracing::warn!(job_id = %job.id, "lease lost; another worker may run this job");
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::warn!(job_id = %job.id, error = %e, "lease renewal failed; will retry")
                }
            }
        }
    }

    /// Records the outcome, retrying while Redis is away: an outcome that is never recorded
    /// would make the job run again after its lease.
    async fn record(&self, job: &ClaimedJob, ack: &Ack) {
        let mut delay = Duration::from_millis(50);
        let give_up = Instant::now() + Duration::from_millis(self.store.config().queue.lease_ms);
        loop {
            let recorded = match ack {
                Ack::Succeeded(result) => match self.successes.get(&job.kind()) {
                    Some(batcher) => batcher.succeeded(&job.id, &job.token, result.clone()).await,
                    None => self
                        .store
                        .ack(job.kind(), &job.id, &job.token, ack)
                        .await
                        .map_err(|e| e.to_string()),
                },
                other => self
                    .store
                    .ack(job.kind(), &job.id, &job.token, other)
                    .await
                    .map_err(|e| e.to_string()),
            };
            match recorded {
                Ok(status) => {
                    let kind = job.kind().as_str();
                    let finished = match status {
                        AckStatus::Succeeded => Some("succeeded"),
                        AckStatus::Dead => Some("dead"),
                        _ => None,
                    };
                    if let Some(outcome) = finished {
                        metrics::counter!("onboard_jobs_finished_total", "kind" => kind, "outcome" => outcome)
                            .increment(1);
                    }
                    if status == AckStatus::Stale {
                        tracing::warn!(job_id = %job.id, "outcome not recorded: the lease had been lost");
                    }
                    tracing::debug!(job_id = %job.id, kind, attempt = job.attempt, ?status, "attempt recorded");
                    return;
                }
                Err(e) if Instant::now() < give_up => {
                    tracing::warn!(job_id = %job.id, error = %e, "could not record the outcome; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(job_id = %job.id, error = %e, "gave up recording the outcome; the lease will expire and the job run again");
                    return;
                }
            }
        }
    }
}
