//! The way to Redis: one server or a Redis Cluster, behind one connection type.
//!
//! `redis_url` is one URL or a comma-separated list of a cluster's seed nodes. Which of the
//! two it is, is not configured but asked: the first node that answers says whether cluster
//! mode is on (`INFO cluster`). Everything else in onboard talks to a [`RedisConnection`]
//! and does not care: on a cluster every script and pipeline stays in one hash slot (all of
//! a provider's keys share its hash tag, `queue/keys.rs`), and the cluster client follows
//! MOVED, failovers and new topologies by itself; a request a dead node refused, or one a
//! node answered MOVED, TRYAGAIN or CLUSTERDOWN to after the client gave up following it, is
//! sent again once the client has refreshed its map of the slots (`NOT_RUN_RETRIED`).
//!
//! Two kinds of connection: [`RedisLink::shared`], multiplexed, reconnecting, with response
//! timeouts, for everything short; [`RedisLink::blocking`], with no response timeout, for a
//! blocking read (BLPOP, XREAD BLOCK) that must not stall or time out the shared one. On a
//! cluster the shared one is a [`HealingCluster`]: the client's connection can wedge after
//! a failover, and one that answers nothing until a request times out is replaced.

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};
use std::time::Duration;

pub mod healing;
pub use healing::HealingCluster;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may take (blocking reads use their own connection).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a blocking read may take on a cluster (the longest block asked is a few
/// seconds; a cluster connection needs some bound to notice a dead node).
const BLOCKING_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Redis is: one server, or a cluster reached through its seed nodes. Cheap to clone.
#[derive(Clone)]
pub enum RedisLink {
    /// One redis-server.
    Single(redis::Client),
    /// A Redis Cluster (boxed: its client is several times the size of a single one).
    Cluster(Box<ClusterClient>),
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_cluster() {
            "RedisLink::Cluster"
        } else {
            "RedisLink::Single"
        })
    }
}

impl RedisLink {
    /// Reads `urls` (one URL, or seed nodes separated by commas) and asks the first node
    /// that answers whether it is part of a cluster.
    pub async fn discover(urls: &str) -> RedisResult<RedisLink> {
        let seeds: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if seeds.is_empty() {
            return Err(invalid("redis_url is empty"));
        }
        let mut last_error = None;
        for seed in &seeds {
            match cluster_enabled(seed).await {
                Ok(true) => return Self::cluster(&seeds),
                Ok(false) if seeds.len() == 1 => {
                    return Ok(RedisLink::Single(redis::Client::open(*seed)?))
                }
                Ok(false) => {
                    return Err(invalid(
                        "redis_url lists several nodes but they are not a Redis Cluster \
                         (cluster_enabled:0): give one URL for a single server",
                    ))
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| invalid("no Redis node answered")))
    }

    fn cluster(seeds: &[&str]) -> RedisResult<RedisLink> {
        let client = ClusterClient::builder(seeds.iter().copied())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            // A failover takes the cluster a few node timeouts; retries back off for about
            // half a minute in all before a command fails.
            .overall_response_timeout(Some(Duration::from_secs(30)))
            .retries(12)
            .min_retry_wait(100)
            .max_retry_wait(2_000)
            .build()?;
        Ok(RedisLink::Cluster(Box::new(client)))
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisLink::Cluster(_))
    }

    /// A multiplexed connection for short commands: reconnects by itself, follows the
    /// cluster's topology, times out a command after a few seconds.
    pub async fn shared(&self) -> RedisResult<RedisConnection> {
        match self {
            RedisLink::Single(client) => {
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(6)
                    .set_max_delay(Duration::from_secs(2));
                let conn = client.get_connection_manager_with_config(cfg).await?;
                Ok(RedisConnection::Single(conn))
            }
            RedisLink::Cluster(client) => Ok(RedisConnection::SharedCluster(
                HealingCluster::connect((**client).clone()).await?,
            )),
        }
    }

    /// A connection of its own, with no response timeout, for blocking reads.
    pub async fn blocking(&self) -> RedisResult<RedisConnection> {
        match self {
            RedisLink::Single(client) => {
                let cfg = redis::AsyncConnectionConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(CONNECT_TIMEOUT));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await?;
                Ok(RedisConnection::Blocking(conn))
            }
            RedisLink::Cluster(client) => {
                let cfg = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(BLOCKING_RESPONSE_TIMEOUT);
                Ok(RedisConnection::Cluster(
                    client.get_async_connection_with_config(cfg).await?,
                ))
            }
        }
    }
}

/// Whether the node at `url` runs in cluster mode.
async fn cluster_enabled(url: &str) -> RedisResult<bool> {
    let client = redis::Client::open(url)?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(&mut conn)
        .await?;
    Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1"))
}

fn invalid(why: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::InvalidClientConfig, why))
}

/// How often a cluster request that did not run is sent again (see [`did_not_run`]): sending
/// it again is safe. After a failover the client's slot map still names the dead master
/// until a failed request makes it refresh the map, and the next try goes to the promoted
/// replica.
const NOT_RUN_RETRIED: u32 = 5;
/// The pause before that retry.
const NOT_RUN_PAUSE: Duration = Duration::from_millis(100);

/// A connection to one server or to a cluster; every command and script goes through it.
#[derive(Clone)]
pub enum RedisConnection {
    /// The shared, reconnecting connection to one server.
    Single(ConnectionManager),
    /// A connection of its own to one server, for blocking reads.
    Blocking(MultiplexedConnection),
    /// The shared cluster connection (routes by key, follows topology changes; replaced
    /// when it wedges, see [`HealingCluster`]).
    SharedCluster(HealingCluster),
    /// A cluster connection of its own, for blocking reads.
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// One SCAN step over the node that holds `slot_key`'s slot (on one server: the
    /// server). A cluster has no SCAN across nodes; each provider's keys live on one node.
    pub async fn scan_step(
        &mut self,
        slot_key: &str,
        cursor: u64,
        pattern: &str,
    ) -> RedisResult<(u64, Vec<String>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let route = || {
            let route = Route::with_key(slot_key, SlotAddr::Master);
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route))
        };
        let value = match self {
            RedisConnection::SharedCluster(healing) => {
                let route = route();
                healing
                    .request(|mut conn| async move { conn.route_command(cmd, route).await })
                    .await?
            }
            RedisConnection::Cluster(conn) => conn.route_command(cmd, route()).await?,
            other => cmd.query_async(other).await?,
        };
        Ok(redis::from_redis_value(value)?)
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Blocking(c) => c.req_packed_command(cmd),
            RedisConnection::SharedCluster(healing) => {
                Box::pin(healing.request(move |conn| cluster_command(conn, cmd)))
            }
            RedisConnection::Cluster(c) => Box::pin(cluster_command(c.clone(), cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Blocking(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::SharedCluster(healing) => Box::pin(
                healing.request(move |conn| cluster_pipeline(conn, pipeline, offset, count)),
            ),
            RedisConnection::Cluster(c) => {
                Box::pin(cluster_pipeline(c.clone(), pipeline, offset, count))
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Blocking(c) => c.get_db(),
            RedisConnection::SharedCluster(_) => 0,
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// One command on a cluster connection, sent again while it did not run.
async fn cluster_command(conn: ClusterConnection, cmd: &Cmd) -> RedisResult<Value> {
    retried_while_not_run(|| {
        let mut c = conn.clone();
        async move { c.req_packed_command(cmd).await }
    })
    .await
}

/// One pipeline on a cluster connection, sent again while it did not run.
async fn cluster_pipeline(
    conn: ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    retried_while_not_run(|| {
        let mut c = conn.clone();
        async move { c.req_packed_commands(pipeline, offset, count).await }
    })
    .await
}

/// Whether a cluster request failed without running: the connection was refused (nothing
/// was sent), or the node answered MOVED (the slot is elsewhere), TRYAGAIN or CLUSTERDOWN
/// (a failover under way). The cluster client follows these itself for a while; one that
/// still reaches us came during a failover that outlasted its own retries.
fn did_not_run(e: &RedisError) -> bool {
    e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::Moved | ServerErrorKind::TryAgain | ServerErrorKind::ClusterDown
            )
        )
}

/// Runs `attempt` until it succeeds, fails otherwise than by [`did_not_run`], or has not run
/// [`NOT_RUN_RETRIED`] times more.
async fn retried_while_not_run<T, F, Fut>(mut attempt: F) -> RedisResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = RedisResult<T>>,
{
    let mut retried = 0;
    loop {
        match attempt().await {
            Err(e) if did_not_run(&e) && retried < NOT_RUN_RETRIED => {
                retried += 1;
                tokio::time::sleep(NOT_RUN_PAUSE).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(reply: &[u8]) -> RedisError {
        match redis::parse_redis_value(reply) {
            Ok(v) => v.extract_error().expect_err("an error reply"),
            Err(e) => e,
        }
    }

    #[test]
    fn redirects_and_failovers_did_not_run_other_errors_may_have() {
        assert!(did_not_run(&server_error(
            b"-MOVED 8445 127.0.0.1:7001\r\n"
        )));
        assert!(did_not_run(&server_error(b"-TRYAGAIN Multiple keys\r\n")));
        assert!(did_not_run(&server_error(
            b"-CLUSTERDOWN The cluster is down\r\n"
        )));
        assert!(!did_not_run(&server_error(b"-ERR boom\r\n")));
        assert!(!did_not_run(&server_error(b"-BUSY script running\r\n")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_moved_reply_is_sent_again_and_an_error_script_is_not() {
        let mut calls = 0;
        let ok: RedisResult<u8> = retried_while_not_run(|| {
            calls += 1;
            let reply = if calls < 3 {
                Err(server_error(b"-MOVED 8445 127.0.0.1:7001\r\n"))
            } else {
                Ok(7)
            };
            async move { reply }
        })
        .await;
        assert_eq!((ok.ok(), calls), (Some(7), 3));

        let mut calls = 0;
        let failed: RedisResult<u8> = retried_while_not_run(|| {
            calls += 1;
            async { Err(server_error(b"-ERR boom\r\n")) }
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(calls, 1);
    }
}
