//! [`JobStore`]: the queue's operations on Redis, each one Lua script (or a pipeline of
//! them). This module holds the connection and how a script is invoked; the operations are
//! split by role, one `impl JobStore` block per file:
//!
//! * `enqueue`: enqueue one or many jobs (idempotency keys and their payload digests, bulk
//!   `pending` entries), and what an enqueue would do with a key (`check_keys`);
//! * `claim`: fetch (which also promotes due jobs and takes back expired leases), decode,
//!   quarantine, renew a lease;
//! * `complete`: record an attempt's outcome, one at a time or successes in batches;
//! * `dependencies`: children waiting on a parent;
//! * `codes`: verify codes (supply, resend, expire);
//! * `admin`: status, dead letters, statistics;
//! * `control`: pausing a job kind, and batches (register, list, count, pause, resume,
//!   cancel);
//! * `keyring`: which encryption keys Redis's data is sealed with, and re-sealing it;
//! * `pipelines`: pipelines kept within one provider's hash slot.
//!
//! The store is cheap to clone (one multiplexed, auto-reconnecting connection underneath,
//! to one server or a cluster: `redis_link`) and is shared by the producer, the worker's
//! runtime and the sweeper. Every script call and every pipeline stays within one
//! provider's hash slot, so all of it runs unchanged on a Redis Cluster.

mod admin;
mod browse;
mod claim;
mod codes;
mod complete;
mod control;
mod dependencies;
mod enqueue;
mod keyring;
mod pipelines;

pub use claim::{ClaimRequest, Fetched};
pub use control::{BatchState, BatchStatus};
pub use keyring::RekeyReport;

use super::cipher::{Cipher, CipherError};
use super::digest::PayloadDigest;
use super::ids::{id_prefix, kind_of_id};
use super::keys::QueueKeys;
use crate::config::{Config, Durability};
use crate::events;
use crate::providers::Provider;
use crate::redis_link::{RedisConnection, RedisLink};
use redis::{Script, ScriptInvocation, Value};
use std::sync::Arc;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answers, but cannot serve part of the queue now (a cluster slot without a
    /// master, a node that does not answer).
    #[error("redis cannot serve {0}")]
    Unavailable(String),
    /// With `durability = "replicated"`: the write is on the master but no replica confirmed
    /// it in time, so it can be lost if the master fails now.
    #[error("the write reached the Redis master but no replica confirmed it within {timeout_ms} ms (durability = \"replicated\"): it may be lost if the master fails now; retrying with the same idempotency key is safe")]
    NotReplicated {
        /// How long it waited.
        timeout_ms: u64,
    },
    /// The encryption key is missing or wrong.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// A script answered something the code does not expect (a bug, or a foreign key).
    #[error("unexpected answer from the queue: {0}")]
    Protocol(String),
    /// The id is not a job id (`cust_…`, `bind_…`, `acct_…`, `user_…`).
    #[error(
        "`{0}` is not a job id (expected cust_…, bind_…, acct_… or user_… followed by a ULID)"
    )]
    BadId(String),
    /// No job with that id (never existed, purged, or expired after its retention).
    #[error("no job {0} (never enqueued, purged, or past its retention)")]
    NotFound(String),
    /// The job is in a state that does not allow the operation.
    #[error("job {id} is {state}, {expected}")]
    WrongState {
        /// Job id.
        id: String,
        /// Its state.
        state: String,
        /// What the operation needed.
        expected: &'static str,
    },
    /// The job's record cannot be read as it stands (poison): why.
    #[error("job {id} has a malformed record: {why}")]
    Malformed {
        /// Job id.
        id: String,
        /// What is wrong.
        why: String,
    },
    /// Redis holds data sealed with keys this process does not have.
    #[error("Redis holds data encrypted with key(s) this process does not have (key check {}): set ONBOARD_ENCRYPTION_KEY to the key(s) it was written with (a comma-separated list: the first encrypts, all decrypt)", .unknown.join(", "))]
    KeyMismatch {
        /// The check values of the keys we lack.
        unknown: Vec<String>,
    },
    /// A verify code that is not 6 digits.
    #[error("a verify code is exactly 6 digits")]
    BadCode,
    /// The idempotency key was used before for another payload: an idempotency key means
    /// one request. Nothing was written for that job (the others of the call were).
    #[error(
        "the idempotency key of job {index} of the call was used for job {first_id} ({state}) \
         with a different payload; nothing was enqueued for it"
    )]
    IdempotencyConflict {
        /// The job's place in the call (0 for a single enqueue).
        index: usize,
        /// The job that holds the key.
        first_id: String,
        /// Its state (`missing` when its record is gone).
        state: String,
    },
}

/// The queue store. Clone freely.
#[derive(Clone)]
pub struct JobStore {
    conn: RedisConnection,
    link: RedisLink,
    cipher: Arc<Cipher>,
    digest: Arc<PayloadDigest>,
    cfg: Arc<Config>,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore").finish_non_exhaustive()
    }
}

impl JobStore {
    /// Connects to Redis (reconnecting by itself later) and checks the encryption keys
    /// against the ones Redis's data is sealed with.
    pub async fn connect(cfg: &Config) -> Result<JobStore, QueueError> {
        let cipher = Cipher::from_config(cfg)?;
        let digest = PayloadDigest::from_config(cfg)?;
        let link = RedisLink::discover(&cfg.redis_url).await?;
        let conn = link.shared().await?;
        let store = JobStore {
            conn,
            link,
            cipher: Arc::new(cipher),
            digest: Arc::new(digest),
            cfg: Arc::new(cfg.clone()),
        };
        store.check_encryption_keys().await?;
        Ok(store)
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Where Redis is, for connections of one's own (blocking waits).
    pub fn link(&self) -> &RedisLink {
        &self.link
    }

    /// A clone of the shared connection.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// The events stream `provider`'s queues write to (see [`events::stream_key`]).
    pub fn events_key(&self, provider: Provider) -> String {
        events::stream_key(provider, self.link.is_cluster())
    }

    /// Every events stream there is, for followers to read them all.
    pub fn events_keys(&self) -> Vec<String> {
        Provider::ALL
            .iter()
            .map(|&p| self.events_key(p))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// An invocation of a queue script on `keys`' queue, with the arguments every script
    /// takes first (see `common.lua`); the caller adds the script's own.
    fn script<'s>(&self, script: &'s Script, keys: &QueueKeys) -> ScriptInvocation<'s> {
        let mut inv = script.prepare_invoke();
        // KEYS[1] routes the call to the provider's slot; the scripts build the rest of
        // the keys from the prefix, which carries the same hash tag.
        inv.key(keys.provider().notify())
            .key(self.events_key(keys.kind().provider()))
            .arg(keys.prefix())
            .arg(self.cfg.queue.events_maxlen)
            .arg(keys.kind().as_str())
            .arg(id_prefix(keys.kind()));
        inv
    }

    /// Runs one script invocation.
    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Runs one script invocation whose reply is a list.
    async fn run_list(&self, inv: ScriptInvocation<'_>) -> Result<Vec<Value>, QueueError> {
        self.run(inv).await
    }

    /// Runs one script invocation that writes what must not be lost (an enqueue, an ack, a
    /// supplied code): with `durability = "replicated"` it waits for a replica too.
    async fn run_durable(
        &self,
        inv: ScriptInvocation<'_>,
        unconfirmed: Unconfirmed,
    ) -> Result<Vec<Value>, QueueError> {
        if self.cfg.durability == Durability::Async {
            return self.run_list(inv).await;
        }
        let mut pipe = redis::pipe();
        pipe.invoke_script(&inv);
        let mut replies: Vec<Value> = self.query_durable(&mut pipe, unconfirmed).await?;
        let reply = replies
            .pop()
            .ok_or_else(|| QueueError::Protocol("empty script reply".into()))?;
        redis::from_redis_value(reply).map_err(|e| QueueError::Protocol(e.to_string()))
    }

    /// Runs a pipeline of writes (all in one slot); with `durability = "replicated"`, a
    /// `WAIT` for one replica rides along at its end, on the same node's connection, and a
    /// write no replica confirmed in time is an error. Returns the pipeline's own replies.
    async fn query_durable(
        &self,
        pipe: &mut redis::Pipeline,
        unconfirmed: Unconfirmed,
    ) -> Result<Vec<Value>, QueueError> {
        if self.cfg.durability == Durability::Async {
            return self.query_pipeline(pipe).await;
        }
        pipe.cmd("WAIT").arg(1).arg(self.cfg.replication_timeout_ms);
        let mut replies: Vec<Value> = self.query_pipeline(pipe).await?;
        let acked: i64 = replies
            .pop()
            .and_then(|v| redis::from_redis_value(v).ok())
            .unwrap_or(0);
        if acked < 1 {
            metrics::counter!("onboard_writes_unreplicated_total").increment(1);
            match unconfirmed {
                Unconfirmed::Fail => {
                    return Err(QueueError::NotReplicated {
                        timeout_ms: self.cfg.replication_timeout_ms,
                    })
                }
                Unconfirmed::Count => tracing::warn!(
                    timeout_ms = self.cfg.replication_timeout_ms,
                    "a job's outcome is on the Redis master but no replica confirmed it in time"
                ),
            }
        }
        Ok(replies)
    }

    /// The keys of the queue that holds job `id`.
    fn keys_for(&self, id: &str) -> Result<QueueKeys, QueueError> {
        kind_of_id(id)
            .map(QueueKeys::new)
            .ok_or_else(|| QueueError::BadId(id.to_string()))
    }
}

/// What a write no replica confirmed in time (`durability = "replicated"`) becomes.
#[derive(Debug, Clone, Copy)]
enum Unconfirmed {
    /// An error for the caller, who can retry (an enqueue with its idempotency key, a code).
    Fail,
    /// A counted warning: a worker's acknowledgement is on the master, and sending it again
    /// would only be refused (its lease is released), so the worker goes on.
    Count,
}

/// The error for a script's refusal (`expected` says what the operation needed).
fn refused<T>(
    id: &str,
    verdict: super::replies::Verdict<T>,
    expected: &'static str,
) -> Result<T, QueueError> {
    use super::replies::Verdict;
    match verdict {
        Verdict::Done(v) => Ok(v),
        Verdict::NotFound => Err(QueueError::NotFound(id.to_string())),
        Verdict::WrongState(state) => Err(QueueError::WrongState {
            id: id.to_string(),
            state,
            expected,
        }),
    }
}
