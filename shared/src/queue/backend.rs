//! The apalis backend: hands a worker the jobs of one queue.
//!
//! A fetcher task claims at most as many jobs as the worker has free slots (so no claimed
//! job waits while its lease runs down), and when the queue is empty it blocks on the
//! queue's notify list on a connection of its own, so an enqueue wakes an idle worker at
//! once. Redis errors never reach apalis (an error would end the worker): the fetcher
//! retries with backoff until Redis is back. On shutdown, claimed jobs that never started
//! are handed straight back to the queue.

use super::ack_layer::{AckLayer, Slots};
use super::keys::QueueKeys;
use super::outcome::OutcomePolicy;
use super::record::{Ack, ClaimedJob};
use super::store::{now_ms, JobStore};
use crate::jobs::JobKind;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Never fails: Redis trouble is retried inside the backend.
#[derive(Debug, thiserror::Error)]
#[error("the redis backend does not fail")]
pub struct NeverFails;

/// Settings of one backend.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// Concurrent jobs of this worker (must match the worker's concurrency layer).
    pub concurrency: usize,
    /// Most jobs claimed per fetch.
    pub batch: usize,
    /// Set to `true` when running jobs must stop and be handed back (shutdown deadline).
    pub hard_stop: watch::Receiver<bool>,
}

impl BackendSettings {
    /// Settings for a worker of `concurrency` slots: claims at most 100 jobs per fetch
    /// (one script call stays short), never more than the slots.
    pub fn new(concurrency: usize, hard_stop: watch::Receiver<bool>) -> Self {
        BackendSettings {
            concurrency,
            batch: concurrency.min(100),
            hard_stop,
        }
    }
}

/// The backend of one queue for one apalis worker.
pub struct RedisBackend {
    kind: JobKind,
    store: JobStore,
    settings: BackendSettings,
    slots: Arc<Slots>,
    rx: Option<mpsc::UnboundedReceiver<ClaimedJob>>,
    stop: watch::Sender<bool>,
    fetcher: Option<tokio::task::JoinHandle<()>>,
    closing: Option<BoxFuture<'static, ()>>,
}

impl RedisBackend {
    /// A backend for the `kind` queue.
    pub fn new(kind: JobKind, store: JobStore, settings: BackendSettings) -> Self {
        let concurrency = settings.concurrency.max(1);
        RedisBackend {
            kind,
            store,
            settings,
            slots: Arc::new(Slots::new(concurrency)),
            rx: None,
            stop: watch::channel(false).0,
            fetcher: None,
            closing: None,
        }
    }

    fn start_fetcher(&mut self) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.rx = Some(rx);
        let fetcher = Fetcher {
            kind: self.kind,
            store: self.store.clone(),
            slots: self.slots.clone(),
            batch: self.settings.batch.max(1),
            tx,
            stop: self.stop.subscribe(),
        };
        self.fetcher = Some(tokio::spawn(fetcher.run()));
    }
}

impl Backend for RedisBackend {
    type Task = Task<ClaimedJob>;
    type Error = NeverFails;

    fn poll_ready(
        &mut self,
        _cx: &mut Context<'_>,
        _w: &WorkerContext,
    ) -> Poll<Result<(), NeverFails>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _w: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, NeverFails>>> {
        if self.fetcher.is_none() {
            self.start_fetcher();
        }
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(job)) => Poll::Ready(Some(Ok(Task::new(job)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _w: &WorkerContext,
    ) -> Poll<Result<(), NeverFails>> {
        if self.closing.is_none() {
            let _ = self.stop.send(true);
            let fetcher = self.fetcher.take();
            let rx = self.rx.take();
            let store = self.store.clone();
            let kind = self.kind;
            self.closing = Some(Box::pin(async move {
                if let Some(f) = fetcher {
                    let _ = f.await;
                }
                // Claimed but never started: straight back to the queue.
                if let Some(mut rx) = rx {
                    rx.close();
                    while let Some(job) = rx.recv().await {
                        if let Err(e) = store.ack(kind, &job.id, &job.token, &Ack::Release).await {
                            tracing::warn!(job_id = %job.id, error = %e, "could not hand a job back; its lease will expire");
                        }
                    }
                }
            }));
        }
        match self.closing.as_mut() {
            Some(f) => f.as_mut().poll(cx).map(|_| Ok(())),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl BackendConfig for RedisBackend {
    type Args = ClaimedJob;
    type Id = String;
    type Kind = apalis_core::backend::finalize::Ephemeral;
    type Config = JobKind;
    type Layer = AckLayer;

    fn config(&self) -> &JobKind {
        &self.kind
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> AckLayer {
        AckLayer::new(
            self.store.clone(),
            self.kind,
            self.slots.clone(),
            OutcomePolicy::new(&self.store.config().queue),
            self.settings.hard_stop.clone(),
        )
    }
}

/// The fetcher task of one backend.
struct Fetcher {
    kind: JobKind,
    store: JobStore,
    slots: Arc<Slots>,
    batch: usize,
    tx: mpsc::UnboundedSender<ClaimedJob>,
    stop: watch::Receiver<bool>,
}

impl Fetcher {
    async fn run(mut self) {
        let mut waiter = IdleWaiter::new(self.store.client().clone(), QueueKeys::new(self.kind));
        let token_base = ulid::Ulid::new().to_string();
        let mut claims: u64 = 0;
        let mut errors = error_backoff();
        // Whether the last claim found work: only then is it worth gathering slots.
        let mut busy = false;
        while !*self.stop.borrow() {
            let free = self.slots.free();
            if free == 0 {
                tokio::select! {
                    _ = self.slots.freed() => {}
                    _ = self.stop.changed() => {}
                }
                continue;
            }
            if busy {
                self.gather_slots().await;
            }
            let free = self.slots.free();
            claims += 1;
            let token = format!("{token_base}:{claims}");
            match self
                .store
                .fetch(self.kind, free.min(self.batch), &token)
                .await
            {
                Ok(fetched) => {
                    errors = error_backoff();
                    let idle = fetched.jobs.is_empty() && fetched.quarantined == 0;
                    busy = !idle;
                    for job in fetched.jobs {
                        self.slots.take();
                        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
                            // The worker is gone; give the job back.
                            self.slots.release();
                            let _ = self
                                .store
                                .ack(self.kind, &job.id, &job.token, &Ack::Release)
                                .await;
                        }
                    }
                    if idle {
                        let wait = fetched.next_wake_ms.saturating_sub(now_ms());
                        let wait = Duration::from_millis(wait.clamp(10, 1_000));
                        tokio::select! {
                            _ = waiter.wait(wait) => {}
                            _ = self.stop.changed() => {}
                        }
                    }
                }
                Err(e) => {
                    busy = false;
                    let delay = errors.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(kind = %self.kind, error = %e, ?delay, "fetch failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.changed() => {}
                    }
                }
            }
        }
    }
}

impl Fetcher {
    /// Under load slots free one at a time, and claiming one job per script call caps
    /// throughput (APALIS.md: 5.6k-7.3k jobs/s claiming 1, 29k-36k claiming 50). So while
    /// the queue has work, wait up to [`GATHER_WINDOW`] for a quarter of the batch to be
    /// free. An idle worker has every slot free and never waits here.
    async fn gather_slots(&self) {
        let want = (self.batch / 4).max(1);
        let deadline = tokio::time::Instant::now() + GATHER_WINDOW;
        while self.slots.free() < want {
            if tokio::time::timeout_at(deadline, self.slots.freed())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// The longest a busy fetcher waits to claim several jobs at once instead of one.
const GATHER_WINDOW: Duration = Duration::from_millis(2);

fn error_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Blocks on the queue's notify list until an enqueue pushes a token or `wait` passes.
/// It owns its connection, with no response timeout: a blocking pop on the shared
/// multiplexed connection would time out and stall every ack behind it.
struct IdleWaiter {
    client: redis::Client,
    keys: QueueKeys,
    conn: Option<redis::aio::MultiplexedConnection>,
}

impl IdleWaiter {
    fn new(client: redis::Client, keys: QueueKeys) -> Self {
        IdleWaiter {
            client,
            keys,
            conn: None,
        }
    }

    async fn wait(&mut self, wait: Duration) {
        if self.conn.is_none() {
            let cfg = redis::AsyncConnectionConfig::new()
                .set_response_timeout(None)
                .set_connection_timeout(Some(Duration::from_secs(2)));
            match self
                .client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
            {
                Ok(c) => self.conn = Some(c),
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    return;
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let res: redis::RedisResult<Option<(String, String)>> = redis::cmd("BLPOP")
            .arg(self.keys.notify())
            .arg(wait.as_secs_f64())
            .query_async(conn)
            .await;
        if res.is_err() {
            self.conn = None;
            tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
        }
    }
}
