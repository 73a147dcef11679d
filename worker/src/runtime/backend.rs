//! The apalis backend of one provider's queues (APALIS.md; one worker per provider, so the
//! order its capacity goes in holds across its kinds): `poll_next` hands the worker the jobs the
//! [`Fetcher`] claimed; its layer ([`AckLayer`]) runs each under its lease and records its
//! outcome; `poll_close` hands claimed jobs that never started straight back to the queue.

use super::ack_layer::AckLayer;
use super::claimed_ahead::hand_back;
use super::fetcher::Fetcher;
use super::outcome::OutcomePolicy;
use super::slots::Slots;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use futures::future::BoxFuture;
use onboard_shared::jobs::JobKind;
use onboard_shared::providers::Provider;
use onboard_shared::queue::{ClaimedJob, JobStore};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, watch};

/// Never fails: Redis trouble is retried inside the backend.
#[derive(Debug, thiserror::Error)]
#[error("the redis backend does not fail")]
pub struct NeverFails;

/// Settings of one backend.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// Concurrent jobs of this worker (its concurrency layer must be
    /// [`Slots::worker_tasks`](super::slots::Slots::worker_tasks) of this).
    pub concurrency: usize,
    /// Most jobs claimed per fetch.
    pub batch: usize,
    /// Most jobs claimed ahead of free slots (`queue.prefetch`; see
    /// [`ClaimedAhead`](super::claimed_ahead::ClaimedAhead)).
    pub prefetch: usize,
    /// Turns `true` when the process starts shutting down: claim nothing more.
    pub shutdown: watch::Receiver<bool>,
    /// Turns `true` when running jobs must stop and be handed back (shutdown deadline).
    pub hard_stop: watch::Receiver<bool>,
}

impl BackendSettings {
    /// Settings for a worker of `concurrency` slots that claims up to `prefetch` jobs ahead
    /// of them: at most 100 jobs per fetch (one script call stays short), never more than
    /// the slots and what may wait ahead.
    pub fn new(
        concurrency: usize,
        prefetch: usize,
        shutdown: watch::Receiver<bool>,
        hard_stop: watch::Receiver<bool>,
    ) -> Self {
        BackendSettings {
            concurrency,
            batch: (concurrency + prefetch).min(100),
            prefetch,
            shutdown,
            hard_stop,
        }
    }
}

/// The backend of one provider's queues for one apalis worker.
pub struct RedisBackend {
    provider: Provider,
    kinds: Vec<JobKind>,
    store: JobStore,
    settings: BackendSettings,
    slots: Arc<Slots>,
    rx: Option<mpsc::UnboundedReceiver<ClaimedJob>>,
    stop: watch::Sender<bool>,
    fetcher: Option<tokio::task::JoinHandle<()>>,
    closing: Option<BoxFuture<'static, ()>>,
}

impl RedisBackend {
    /// A backend for the queues of `kinds` (all of one provider, at least one).
    pub fn new(kinds: Vec<JobKind>, store: JobStore, settings: BackendSettings) -> Self {
        let concurrency = settings.concurrency.max(1);
        RedisBackend {
            provider: kinds.first().map_or(Provider::Iot, |k| k.provider()),
            kinds,
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
            kinds: self.kinds.clone(),
            store: self.store.clone(),
            slots: self.slots.clone(),
            batch: self.settings.batch.max(1),
            prefetch: self.settings.prefetch,
            tx,
            stop: self.stop.subscribe(),
            shutdown: self.settings.shutdown.clone(),
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
            self.closing = Some(Box::pin(async move {
                if let Some(f) = fetcher {
                    let _ = f.await;
                }
                // Claimed but never started: straight back to the queue, as they were.
                if let Some(mut rx) = rx {
                    rx.close();
                    while let Some(job) = rx.recv().await {
                        hand_back(&store, &job).await;
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
    type Config = Provider;
    type Layer = AckLayer;

    fn config(&self) -> &Provider {
        &self.provider
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> AckLayer {
        AckLayer::new(
            self.store.clone(),
            &self.kinds,
            self.slots.clone(),
            OutcomePolicy::new(&self.store.config().queue),
            self.settings.hard_stop.clone(),
        )
    }
}
