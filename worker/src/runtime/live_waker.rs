//! How a busy fetcher learns that a live job arrived: a task blocks on the provider's
//! `notify:live` list, which every enqueue of live jobs pushes a token to, and wakes the
//! fetcher, which claims at once into the slot it keeps free for live work (`fetcher.rs`).
//!
//! An idle fetcher needs none of this (it blocks on the `notify` list itself, see
//! [`IdleWaiter`](super::idle_waiter::IdleWaiter)); a busy one claims only when slots free
//! up, so without a wake-up a live job would wait for a bulk job to end.

use onboard_shared::queue::keys::ProviderKeys;
use onboard_shared::redis_link::{RedisConnection, RedisLink};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The longest one blocking pop waits (the task notices a stop within it at the latest).
const BLOCK: Duration = Duration::from_secs(1);
/// The pause after Redis failed (the fetcher's own claims report the problem).
const PAUSE_AFTER_ERROR: Duration = Duration::from_millis(200);

/// See the module documentation. Dropping it ends the task.
pub struct LiveWaker {
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl LiveWaker {
    /// Starts the task on `keys`' provider; it ends when `stop` turns true or at drop.
    pub fn spawn(link: RedisLink, keys: ProviderKeys, stop: watch::Receiver<bool>) -> Self {
        let arrived = Arc::new(Notify::new());
        let task = tokio::spawn(watch_live(link, keys, stop, arrived.clone()));
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

async fn watch_live(
    link: RedisLink,
    keys: ProviderKeys,
    stop: watch::Receiver<bool>,
    arrived: Arc<Notify>,
) {
    let list = keys.notify_live();
    let mut conn: Option<RedisConnection> = None;
    while !*stop.borrow() {
        if conn.is_none() {
            match link.blocking().await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    tokio::time::sleep(PAUSE_AFTER_ERROR).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let popped: redis::RedisResult<Option<(String, String)>> = redis::cmd("BLPOP")
            .arg(&list)
            .arg(BLOCK.as_secs_f64())
            .query_async(c)
            .await;
        match popped {
            Ok(Some(_)) => arrived.notify_one(),
            Ok(None) => {}
            Err(_) => {
                conn = None;
                tokio::time::sleep(PAUSE_AFTER_ERROR).await;
            }
        }
    }
}
