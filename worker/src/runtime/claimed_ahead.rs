//! Jobs claimed ahead of free slots (`queue.prefetch`), waiting in the fetcher for one.
//!
//! A draining worker whose slots are all busy claims the next jobs while they run, so the
//! claim's round trip and Redis's work overlap the handlers, and claims come in larger
//! batches. While a job waits here its lease is renewed every third of its length, as a
//! running job's is; a job whose lease was lost meanwhile is dropped (another worker has
//! it). When the worker stops, what still waits goes straight back to the queue as it was
//! (`Ack::Unstarted`: no attempt counted, no "uncertain" mark).
//!
//! Live jobs wait at the front: a live job claimed behind bulk ones starts first.

use super::ack_layer::renewal_interval;
use super::slots::Slots;
use onboard_shared::queue::{Ack, ClaimedJob, JobStore, Lane};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// See the module documentation.
pub struct ClaimedAhead {
    waiting: VecDeque<Waiting>,
    limit: usize,
    renew_every: Duration,
}

struct Waiting {
    job: ClaimedJob,
    renew_at: Instant,
}

impl ClaimedAhead {
    /// Up to `limit` jobs (0: nothing is claimed ahead), whose leases of `lease_ms` are
    /// renewed every third of it.
    pub fn new(limit: usize, lease_ms: u64) -> Self {
        ClaimedAhead {
            waiting: VecDeque::new(),
            limit,
            renew_every: renewal_interval(lease_ms),
        }
    }

    /// How many more may be claimed ahead.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.waiting.len())
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Adds one claim's jobs, in claim order: live ones ahead of every bulk job waiting.
    pub fn add(&mut self, jobs: Vec<ClaimedJob>) {
        let renew_at = Instant::now() + self.renew_every;
        let (live, bulk): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|j| j.lane == Lane::Live);
        for job in live.into_iter().rev() {
            self.waiting.push_front(Waiting { job, renew_at });
        }
        for job in bulk {
            self.waiting.push_back(Waiting { job, renew_at });
        }
    }

    /// The next job to start.
    pub fn take_next(&mut self) -> Option<ClaimedJob> {
        self.waiting.pop_front().map(|w| w.job)
    }

    fn next_renewal(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.renew_at).min()
    }

    /// Resolves when a waiting job needs the fetcher: a slot beyond the `kept` ones is
    /// free for it, or its lease is due for renewal. Never while none waits.
    pub async fn needs_attention(&self, slots: &Slots, kept: usize) {
        let Some(renew_at) = self.next_renewal() else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(renew_at) => {}
            _ = async {
                while slots.free() <= kept {
                    slots.freed().await;
                }
            } => {}
        }
    }

    /// Renews the leases due, if any. A lease lost meanwhile drops its job: another
    /// worker holds it now. A failed renewal is tried again shortly.
    pub async fn renew_due(&mut self, store: &JobStore) {
        let now = Instant::now();
        if self.next_renewal().is_none_or(|at| at > now) {
            return;
        }
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for mut w in std::mem::take(&mut self.waiting) {
            if w.renew_at > now {
                kept.push_back(w);
                continue;
            }
            match store.renew(w.job.kind(), &w.job.id, &w.job.token).await {
                Ok(true) => {
                    metrics::counter!("onboard_worker_leases_renewed_total").increment(1);
                    w.renew_at = Instant::now() + self.renew_every;
                    kept.push_back(w);
                }
                Ok(false) => {
                    tracing::warn!(job_id = %w.job.id, "lease lost while claimed ahead; another worker may run this job");
                }
                Err(e) => {
                    tracing::warn!(job_id = %w.job.id, error = %e, "lease renewal failed; will retry");
                    w.renew_at = Instant::now() + Duration::from_millis(100);
                    kept.push_back(w);
                }
            }
        }
        self.waiting = kept;
    }

    /// Hands every waiting job back to the queue as it was.
    pub async fn hand_back_all(&mut self, store: &JobStore) {
        while let Some(job) = self.take_next() {
            hand_back(store, &job).await;
        }
    }
}

/// Hands a claimed job that never started straight back to the queue, as it was (no
/// attempt counted, no "uncertain" mark). On failure its lease expires instead.
pub async fn hand_back(store: &JobStore, job: &ClaimedJob) {
    if let Err(e) = store
        .ack(job.kind(), &job.id, &job.token, &Ack::Unstarted)
        .await
    {
        tracing::warn!(job_id = %job.id, error = %e, "could not hand a job back; its lease will expire");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onboard_shared::jobs::{CreateCustomerJob, Job};
    use onboard_shared::queue::CodePhase;

    fn claimed(id: &str, lane: Lane) -> ClaimedJob {
        ClaimedJob {
            id: id.into(),
            job: Job::CreateCustomer(CreateCustomerJob {
                customer_id: id.into(),
                country_code: "86".into(),
                phone_number: "13900000000".into(),
            }),
            attempt: 1,
            max_attempts: 10,
            token: format!("t:{id}"),
            uncertain: false,
            phase: CodePhase::Send,
            verify_code: None,
            code_failures: 0,
            lane,
            slot: None,
            waited_ms: 0,
        }
    }

    #[test]
    fn live_jobs_start_before_bulk_ones_claimed_earlier_and_order_holds_within_a_lane() {
        let mut ahead = ClaimedAhead::new(8, 30_000);
        ahead.add(vec![claimed("b1", Lane::Bulk), claimed("b2", Lane::Bulk)]);
        assert_eq!(ahead.room(), 6);
        ahead.add(vec![
            claimed("l1", Lane::Live),
            claimed("b3", Lane::Bulk),
            claimed("l2", Lane::Live),
        ]);
        let order: Vec<String> = std::iter::from_fn(|| ahead.take_next().map(|j| j.id)).collect();
        assert_eq!(order, ["l1", "l2", "b1", "b2", "b3"]);
        assert!(ahead.is_empty());
        assert_eq!(ahead.room(), 8);
    }
}
