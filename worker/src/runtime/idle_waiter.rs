//! How an idle fetcher waits for work without polling: a blocking pop on the queue's
//! notify list, which every enqueue (and every job made ready) pushes a token to.
//!
//! It owns its connection, with no response timeout: a blocking pop on the shared
//! multiplexed connection would time out and stall every ack behind it (APALIS.md).

use onboard_shared::queue::keys::ProviderKeys;
use std::time::Duration;

/// See the module documentation.
pub struct IdleWaiter {
    client: redis::Client,
    keys: ProviderKeys,
    conn: Option<redis::aio::MultiplexedConnection>,
}

impl IdleWaiter {
    /// A waiter on the notify list of `keys`' provider.
    pub fn new(client: redis::Client, keys: ProviderKeys) -> Self {
        IdleWaiter {
            client,
            keys,
            conn: None,
        }
    }

    /// Returns when a wake-up token arrives or `wait` has passed (also when Redis is away:
    /// the caller's fetch then reports the problem).
    pub async fn wait(&mut self, wait: Duration) {
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
