//! What the in-process workers (ours and the peer's) share: a [`Probe`] their no-op
//! handlers report to (start instants, counts), and [`Running`], a spawned apalis worker
//! that can be stopped.

use apalis::prelude::*;
use apalis_core::error::WorkerError;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// Handler-side counters and the channel of handler start instants.
#[derive(Clone, Debug)]
pub struct Probe {
    started: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    starts: Option<mpsc::UnboundedSender<Instant>>,
    /// Report the starts of live-lane jobs only (the bulk ones are the load).
    live_only: bool,
}

impl Probe {
    /// A probe; `starts` receives `Instant::now()` at every handler start.
    pub fn new(starts: Option<mpsc::UnboundedSender<Instant>>) -> Probe {
        Probe {
            started: Arc::new(AtomicU64::new(0)),
            finished: Arc::new(AtomicU64::new(0)),
            starts,
            live_only: false,
        }
    }

    /// A probe whose `starts` receive the start instants of live-lane jobs only.
    pub fn live_starts(starts: mpsc::UnboundedSender<Instant>) -> Probe {
        Probe {
            live_only: true,
            ..Probe::new(Some(starts))
        }
    }

    /// Called first thing in a handler.
    pub fn started(&self) {
        self.started_job(true);
    }

    /// Called first thing in a handler that knows its job's lane.
    pub fn started_job(&self, live: bool) {
        let now = Instant::now();
        self.started.fetch_add(1, Ordering::Relaxed);
        match &self.starts {
            Some(tx) if live || !self.live_only => {
                let _ = tx.send(now);
            }
            _ => {}
        }
    }

    /// Called last thing in a handler.
    pub fn finished(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Handler calls finished so far.
    pub fn finished_count(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }
}

/// A worker running on its own task.
pub struct Running {
    stop: Arc<Notify>,
    handle: tokio::task::JoinHandle<Result<(), WorkerError>>,
}

impl Running {
    /// Spawns the future `run` makes from the stop signal, e.g.
    /// `Running::spawn(|stop| worker.run_with_ctx(until(stop)))`.
    pub fn spawn<F>(run: impl FnOnce(Arc<Notify>) -> F) -> Running
    where
        F: Future<Output = Result<(), WorkerError>> + Send + 'static,
    {
        let stop = Arc::new(Notify::new());
        let handle = tokio::spawn(run(stop.clone()));
        Running { stop, handle }
    }

    /// Whether the worker ended by itself (it should not before [`Running::stop`]).
    pub fn ended(&self) -> bool {
        self.handle.is_finished()
    }

    /// How a worker that ended by itself ended (waits up to 10 s for it to finish).
    pub async fn outcome(self) -> String {
        match tokio::time::timeout(Duration::from_secs(10), self.handle).await {
            Ok(Ok(Ok(()))) => "ended without error".into(),
            Ok(Ok(Err(e))) => format!("ended with: {e}"),
            Ok(Err(e)) => format!("task failed: {e}"),
            Err(_) => "still running".into(),
        }
    }

    /// Stops the worker gracefully (10 s at most, then aborts it).
    pub async fn stop(self) {
        self.stop.notify_one();
        let mut handle = self.handle;
        if tokio::time::timeout(Duration::from_secs(10), &mut handle)
            .await
            .is_err()
        {
            handle.abort();
        }
    }
}

/// The shutdown closure for `Worker::run_with_ctx`: stops the worker when `stop` is
/// notified.
pub fn until(
    stop: Arc<Notify>,
) -> impl FnMut(WorkerContext) -> BoxFuture<'static, Result<(), WorkerError>> + Send + 'static {
    move |ctx| {
        let stop = stop.clone();
        Box::pin(async move {
            stop.notified().await;
            ctx.stop()
        })
    }
}
