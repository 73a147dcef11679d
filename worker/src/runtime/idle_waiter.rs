//! How an idle fetcher waits for work without polling: a blocking pop on the queue's
//! notify list, which every enqueue (and every job made ready) pushes a token to. The
//! [`LiveWaker`](super::live_waker::LiveWaker) pops its `notify:live` list the same way.
//!
//! It owns its connection, with no response timeout: a blocking pop on the shared
//! multiplexed connection would time out and stall every ack behind it (APALIS.md).

use onboard_shared::queue::keys::ProviderKeys;
use onboard_shared::redis_link::{RedisConnection, RedisLink};
use std::time::Duration;

/// See the module documentation.
pub struct IdleWaiter {
    link: RedisLink,
    list: String,
    conn: Option<RedisConnection>,
}

impl IdleWaiter {
    /// A waiter on the notify list of `keys`' provider.
    pub fn new(link: RedisLink, keys: ProviderKeys) -> Self {
        Self::on(link, keys.notify())
    }

    /// A waiter on the wake-up list `list`.
    pub fn on(link: RedisLink, list: String) -> Self {
        IdleWaiter {
            link,
            list,
            conn: None,
        }
    }

    /// Returns when a wake-up token arrives (true) or `wait` has passed (false; also when
    /// Redis is away: the caller's fetch then reports the problem).
    pub async fn wait(&mut self, wait: Duration) -> bool {
        if self.conn.is_none() {
            match self.link.blocking().await {
                Ok(c) => self.conn = Some(c),
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    return false;
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let res: redis::RedisResult<Option<(String, String)>> = redis::cmd("BLPOP")
            .arg(&self.list)
            .arg(wait.as_secs_f64())
            .query_async(conn)
            .await;
        match res {
            Ok(popped) => popped.is_some(),
            Err(_) => {
                self.conn = None;
                tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
                false
            }
        }
    }
}
