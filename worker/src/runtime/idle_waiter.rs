//! How an idle fetcher waits for work without polling: a blocking pop on the queue's
//! notify list, which every enqueue (and every job made ready) pushes a token to.
//!
//! It owns its connection, with no response timeout: a blocking pop on the shared
//! multiplexed connection would time out and stall every ack behind it (APALIS.md).

use onboard_shared::queue::keys::ProviderKeys;
use onboard_shared::redis_link::{RedisConnection, RedisLink};
use std::time::Duration;

/// See the module documentation.
pub struct IdleWaiter {
    link: RedisLink,
    keys: ProviderKeys,
    conn: Option<RedisConnection>,
}

impl IdleWaiter {
    /// A waiter on the notify list of `keys`' provider.
    pub fn new(link: RedisLink, keys: ProviderKeys) -> Self {
        IdleWaiter {
            link,
            keys,
            conn: None,
        }
    }

    /// Returns when a wake-up token arrives or `wait` has passed (also when Redis is away:
    /// the caller's fetch then reports the problem).
    pub async fn wait(&mut self, wait: Duration) {
        if self.conn.is_none() {
            match self.link.blocking().await {
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
