//! The shared cluster connection, replaced when it has stopped answering.
//!
//! Why: redis-rs's async cluster connection (1.8.1 and 1.8.2) can wedge after a master
//! dies while many requests are in flight. Its task then sends nothing more: every request,
//! to any node, waits out the overall response timeout, and it never recovers. A worker
//! renewing about a thousand leases when the failover test killed a master was left with
//! no working connection (the blocking reads, on connections of their own, went on). A new
//! connection from the same client works at once, so that is the cure.
//!
//! How a wedge is told from a slow node: a request has waited [`SILENCE`], and the connection
//! answered nothing at all (no reply and no error from any node) since that request was
//! sent. Then the next requests get a new connection; the waiting request goes on waiting on
//! the old one, and is not sent again (it may have run): its caller sees its outcome, a
//! timeout at worst, and retries as it does for any. A request that timed out with nothing
//! heard since it was sent replaces the connection too (the client's overall timeout is 30 s).
//!
//! Why not only the timeout: the default lease is 30 s, as long as that timeout, so leases
//! lapsed while a wedged connection waited it out. Replacing after [`SILENCE`] heals it
//! before a lease renewed every third of a lease runs out.

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::RedisResult;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a request may hear nothing, on a connection that answered nothing else since
/// it was sent, before that connection is judged wedged. Longer than a node's response
/// timeout (5 s) and a test cluster's failover (a 2 s node timeout, then an election);
/// shorter than the default lease (30 s) less its renewal interval (a third of it).
/// Replacing a connection that was only slow costs a reconnect: its requests finish on it.
pub const SILENCE: Duration = Duration::from_secs(10);

/// See the module documentation. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct HealingCluster {
    shared: Arc<Shared>,
}

struct Shared {
    client: ClusterClient,
    /// When this handle was made: answers are timed in milliseconds since.
    epoch: Instant,
    current: RwLock<Arc<Generation>>,
    /// Held while a new connection is made, so a wedge is replaced once.
    replacing: tokio::sync::Mutex<()>,
}

/// One connection and when it last answered.
struct Generation {
    conn: ClusterConnection,
    number: u64,
    /// Milliseconds since `epoch` of its latest answer (a reply or an error from a node),
    /// or of its making. An answer in the millisecond a request was sent counts as before it:
    /// a request silent for long enough cannot tell them apart, and replacing costs little.
    answered_at: AtomicU64,
}

impl Generation {
    /// Whether it answered nothing after `sent_at` (milliseconds since the epoch).
    fn silent_since(&self, sent_at: u64) -> bool {
        self.answered_at.load(Ordering::Acquire) <= sent_at
    }
}

impl HealingCluster {
    /// A connection from `client`, made now.
    pub async fn connect(client: ClusterClient) -> RedisResult<HealingCluster> {
        let conn = client.get_async_connection().await?;
        Ok(HealingCluster {
            shared: Arc::new(Shared {
                client,
                epoch: Instant::now(),
                current: RwLock::new(Arc::new(Generation {
                    conn,
                    number: 0,
                    answered_at: AtomicU64::new(0),
                })),
                replacing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn now_ms(&self) -> u64 {
        self.shared.epoch.elapsed().as_millis() as u64
    }

    fn current(&self) -> Arc<Generation> {
        match self.shared.current.read() {
            Ok(current) => current.clone(),
            // A writer panicked mid-swap: the value it left is still a whole connection.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sends one request with `send` on the current connection. An answer marks that
    /// connection alive; [`SILENCE`] without an answer, or a timeout, on a connection that
    /// answered nothing since the request was sent replaces it (the request itself is not
    /// sent again).
    pub async fn request<T, Fut>(
        &self,
        send: impl FnOnce(ClusterConnection) -> Fut,
    ) -> RedisResult<T>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        let generation = self.current();
        let sent_at = self.now_ms();
        let mut reply = std::pin::pin!(send(generation.conn.clone()));
        let result = match tokio::time::timeout(SILENCE, &mut reply).await {
            Ok(result) => result,
            Err(_silent) => {
                if generation.silent_since(sent_at) {
                    // Replaced beside this request, which goes on waiting for its own answer.
                    let (this, wedged) = (self.clone(), generation.number);
                    tokio::spawn(async move { this.replace(wedged).await });
                }
                reply.await
            }
        };
        match Heard::of(&result) {
            Heard::Answer => {
                generation
                    .answered_at
                    .fetch_max(self.now_ms(), Ordering::AcqRel);
            }
            Heard::Timeout if generation.silent_since(sent_at) => {
                self.replace(generation.number).await
            }
            Heard::Timeout | Heard::Nothing => {}
        }
        result
    }

    /// How many times the connection was replaced (each replacement makes a new generation).
    pub fn replacements(&self) -> u64 {
        self.current().number
    }

    /// Replaces generation `wedged` with a new connection, unless another request did
    /// already. A connection that cannot be made now leaves the old one in place; the next
    /// timeout tries again.
    async fn replace(&self, wedged: u64) {
        let _only_one = self.shared.replacing.lock().await;
        if self.current().number != wedged {
            return;
        }
        match self.shared.client.get_async_connection().await {
            Ok(conn) => {
                let next = Arc::new(Generation {
                    conn,
                    number: wedged + 1,
                    answered_at: AtomicU64::new(self.now_ms()),
                });
                match self.shared.current.write() {
                    Ok(mut current) => *current = next,
                    Err(poisoned) => *poisoned.into_inner() = next,
                }
                metrics::counter!("onboard_redis_connections_replaced_total").increment(1);
                tracing::warn!(
                    generation = wedged + 1,
                    "the cluster connection answered nothing while a request waited; \
                     replaced it with a new one"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "the cluster connection answers nothing and a new one cannot be made yet")
            }
        }
    }
}

/// What a request's result says of its connection.
#[derive(Debug, PartialEq)]
enum Heard {
    /// A node answered: a reply, or an error reply (MOVED, a script's error, ...).
    Answer,
    /// The request timed out.
    Timeout,
    /// Another failure on the way (refused, dropped): says nothing of a wedge.
    Nothing,
}

impl Heard {
    fn of<T>(result: &RedisResult<T>) -> Heard {
        match result {
            Ok(_) => Heard::Answer,
            Err(e) if e.is_timeout() => Heard::Timeout,
            Err(e) if e.is_io_error() => Heard::Nothing,
            Err(_) => Heard::Answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn replies_and_error_replies_are_answers_timeouts_and_broken_links_are_not() {
        let ok: RedisResult<u8> = Ok(1);
        assert_eq!(Heard::of(&ok), Heard::Answer);
        let script_error: RedisResult<u8> =
            redis::parse_redis_value(b"-ERR boom\r\n").and_then(|v| v.extract_error().map(|_| 0));
        assert_eq!(Heard::of(&script_error), Heard::Answer);
        let timeout: RedisResult<u8> = Err(io::Error::from(io::ErrorKind::TimedOut).into());
        assert_eq!(Heard::of(&timeout), Heard::Timeout);
        let refused: RedisResult<u8> =
            Err(io::Error::from(io::ErrorKind::ConnectionRefused).into());
        assert_eq!(Heard::of(&refused), Heard::Nothing);
    }
}
