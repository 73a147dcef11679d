//! How a busy fetcher learns that a live job arrived: a task blocks on the provider's
//! `notify:live` list, which every enqueue of live jobs pushes a token to, and wakes the
//! fetcher, which claims at once into the slot it keeps free for live work (`fetcher.rs`).
//!
//! An idle fetcher needs none of this (it blocks on the `notify` list itself, see
//! [`IdleWaiter`]); a busy one claims only when slots free up, so without a wake-up a live
//! job would wait for a bulk job to end.

use super::idle_waiter::IdleWaiter;
use onboard_shared::queue::keys::ProviderKeys;
use onboard_shared::redis_link::RedisLink;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The longest one blocking pop waits before the next.
const BLOCK: Duration = Duration::from_secs(1);

/// See the module documentation. Dropping it ends the task (the fetcher drops it when it
/// stops).
pub struct LiveWaker {
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl LiveWaker {
    /// Starts the task on `keys`' provider.
    pub fn spawn(link: RedisLink, keys: ProviderKeys) -> Self {
        let arrived = Arc::new(Notify::new());
        let notify = arrived.clone();
        let mut waiter = IdleWaiter::on(link, keys.notify_live());
        let task = tokio::spawn(async move {
            loop {
                if waiter.wait(BLOCK).await {
                    notify.notify_one();
                }
            }
        });
        LiveWaker { arrived, task }
    }

    /// Resolves when a live job arrived (or arrived since the last call).
    pub async fn arrived(&self) {
        self.arrived.notified().await
    }
}

impl Drop for LiveWaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
