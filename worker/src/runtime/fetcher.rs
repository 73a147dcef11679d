//! The fetcher task of one provider's queues: claims jobs into free slots and hands them to
//! the backend's channel.
//!
//! It claims at most as many jobs as there are free slots, plus up to `queue.prefetch`
//! more where the provider has no rate limit ([`ClaimedAhead`]: they wait with their
//! leases renewed), and only as many as the provider's rate limit admits now: the
//! claim reserves each job's request slot, live work before bulk (see `fetch.lua`). When the queue is empty it blocks on the notify list
//! ([`IdleWaiter`]), so an enqueue wakes an idle worker at once. It keeps one slot free for
//! live jobs (with [`LIVE_RESERVE_FROM`] slots or more), and a live
//! enqueue wakes it ([`LiveWaker`]) to claim into that slot at once rather than after the
//! next bulk job ends. Redis errors never reach
//! apalis (an error would end the worker): the fetcher retries with backoff until Redis is
//! back.

use super::claimed_ahead::{hand_back, ClaimedAhead};
use super::idle_waiter::IdleWaiter;
use super::live_waker::LiveWaker;
use super::slots::Slots;
use backon::{BackoffBuilder, ExponentialBuilder};
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::keys::ProviderKeys;
use onboard_shared::queue::{ClaimRequest, ClaimedJob, JobStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The longest a busy fetcher waits to claim several jobs at once instead of one.
const GATHER_WINDOW: Duration = Duration::from_millis(2);

/// The fewest slots with which a busy fetcher keeps one free for live work: below this, one
/// slot is too large a share of the worker to leave idle for a job that may not come.
pub const LIVE_RESERVE_FROM: usize = 8;

/// See the module documentation.
pub struct Fetcher {
    /// The kinds it claims, all of one provider.
    pub kinds: Vec<JobKind>,
    /// Where jobs are claimed.
    pub store: JobStore,
    /// The worker's slots for this queue.
    pub slots: Arc<Slots>,
    /// Most jobs per claim.
    pub batch: usize,
    /// Most jobs claimed ahead of free slots, where the provider has no rate limit.
    pub prefetch: usize,
    /// Where claimed jobs go.
    pub tx: mpsc::UnboundedSender<ClaimedJob>,
    /// Turns true when the worker stops.
    pub stop: watch::Receiver<bool>,
    /// Turns true when the process starts shutting down: from then on nothing is claimed,
    /// so no job is handed back unstarted for nothing.
    pub shutdown: watch::Receiver<bool>,
}

impl Fetcher {
    /// Runs until `stop` turns true.
    pub async fn run(mut self) {
        let Some(&first) = self.kinds.first() else {
            return;
        };
        let provider = first.provider();
        let mut waiter = IdleWaiter::new(self.store.link().clone(), ProviderKeys::new(provider));
        let live = (self.slots.capacity() >= LIVE_RESERVE_FROM)
            .then(|| LiveWaker::spawn(self.store.link().clone(), ProviderKeys::new(provider)));
        // Claiming ahead pays where jobs wait for slots, not for the provider: under a rate
        // limit a claim takes only what the limit admits now, and a job waiting here would
        // miss the request slot its claim reserved for it.
        let cfg = self.store.config();
        let limited = first
            .action()
            .limit
            .rate(&cfg.limits)
            .is_some_and(|r| r > 0.0);
        let prefetch = if limited { 0 } else { self.prefetch };
        let mut ahead = ClaimedAhead::new(prefetch, cfg.queue.lease_ms);
        let token_base = ulid::Ulid::new().to_string();
        let mut claims: u64 = 0;
        let mut errors = error_backoff();
        // Whether the last claim found work: only then is it worth gathering slots, and
        // keeping one free for live work.
        let mut busy = false;
        while !self.stopping() {
            // One slot stays free for live work, and a live arrival claims into it at once
            // (rather than after the next bulk job ends). Live jobs fill it only that way:
            // a claim cannot tell beforehand whether it will get live or bulk work.
            let mut kept = usize::from(live.is_some());
            ahead.renew_due(&self.store).await;
            self.start_ahead(&mut ahead, kept).await;
            if self.slots.free() == 0 && ahead.room() == 0 {
                tokio::select! {
                    _ = self.slots.freed() => {}
                    _ = ahead.needs_attention(&self.slots, kept) => {}
                    _ = changed(&mut self.stop) => {}
                    _ = changed(&mut self.shutdown) => {}
                }
                continue;
            }
            if busy || self.slots.free() <= kept {
                tokio::select! {
                    _ = gather_slots(&self.slots, self.batch, kept, ahead.room(), busy) => {}
                    _ = live_arrived(live.as_ref()) => kept = 0,
                    _ = ahead.needs_attention(&self.slots, kept) => continue,
                    _ = changed(&mut self.stop) => continue,
                    _ = changed(&mut self.shutdown) => continue,
                }
            }
            let free = self.slots.free().saturating_sub(kept);
            let want = (free + ahead.room()).min(self.batch);
            if want == 0 {
                continue;
            }
            claims += 1;
            let token = format!("{token_base}:{claims}");
            let request = ClaimRequest {
                kinds: &self.kinds,
                batch: want,
                token_prefix: &token,
                admission: true,
            };
            match self.store.claim(&request).await {
                Ok(fetched) => {
                    errors = error_backoff();
                    let idle = fetched.wait_ms > 0
                        || (fetched.jobs.is_empty() && fetched.quarantined == 0);
                    busy = !idle;
                    ahead.add(fetched.jobs);
                    self.start_ahead(&mut ahead, kept).await;
                    let wait = Duration::from_millis(fetched.wait_ms.clamp(1, 1_000));
                    if fetched.held_back {
                        // The limit's next slot is `wait` away, whatever is enqueued
                        // meanwhile: sleep exactly that long (a blocking pop's timeout is
                        // only as fine as Redis's housekeeping tick, 100 ms).
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = changed(&mut self.stop) => {}
                            _ = changed(&mut self.shutdown) => {}
                        }
                    } else if idle {
                        tokio::select! {
                            _ = waiter.wait(wait.max(Duration::from_millis(10))) => {}
                            _ = ahead.needs_attention(&self.slots, kept) => {}
                            _ = changed(&mut self.stop) => {}
                            _ = changed(&mut self.shutdown) => {}
                        }
                    }
                }
                Err(e) => {
                    busy = false;
                    let delay = errors.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(%provider, error = %e, ?delay, "fetch failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = ahead.needs_attention(&self.slots, kept) => {}
                        _ = changed(&mut self.stop) => {}
                        _ = changed(&mut self.shutdown) => {}
                    }
                }
            }
        }
        // Claimed ahead and never started: straight back to the queue, as they were.
        ahead.hand_back_all(&self.store).await;
    }

    /// Starts waiting jobs in the free slots beyond the `kept` ones.
    async fn start_ahead(&self, ahead: &mut ClaimedAhead, kept: usize) {
        while self.slots.free() > kept {
            let Some(job) = ahead.take_next() else { break };
            self.hand_over(job).await;
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() || *self.shutdown.borrow()
    }

    /// Takes a slot for a claimed job and hands it to the worker; if the worker is gone,
    /// gives the job straight back.
    async fn hand_over(&self, job: ClaimedJob) {
        self.slots.take();
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
            self.slots.release();
            hand_back(&self.store, &job).await;
        }
    }
}

/// Waits until something can be claimed: a slot beyond the `kept` ones (kept free for
/// live work), or `room` to claim ahead. Then, if the queue has work (`gather`), waits up
/// to [`GATHER_WINDOW`] for a quarter of the batch: under load slots free one at a time,
/// and claiming one job per script call caps throughput (APALIS.md: 5.6k-7.3k jobs/s
/// claiming 1, 29k-36k claiming 50). An idle worker has every slot free and never waits
/// here.
async fn gather_slots(slots: &Slots, batch: usize, kept: usize, room: usize, gather: bool) {
    let claimable = || slots.free().saturating_sub(kept) + room;
    while claimable() == 0 {
        slots.freed().await;
    }
    if !gather {
        return;
    }
    let want = (batch / 4).max(1);
    let deadline = tokio::time::Instant::now() + GATHER_WINDOW;
    while claimable() < want {
        if tokio::time::timeout_at(deadline, slots.freed())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Resolves when a live job arrived; never without a waker.
async fn live_arrived(live: Option<&LiveWaker>) {
    match live {
        Some(l) => l.arrived().await,
        None => std::future::pending().await,
    }
}

/// Resolves when `rx` changes; never once its sender is gone (nothing can change then), so a
/// dropped sender cannot turn a wait into a busy loop.
async fn changed(rx: &mut watch::Receiver<bool>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await
    }
}

fn error_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}
