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
//! * `keyring`: which encryption keys Redis's data is sealed with, and re-sealing it.
//!
//! The store is cheap to clone (one multiplexed, auto-reconnecting connection underneath)
//! and is shared by the producer, the worker's runtime and the sweeper.

mod admin;
mod claim;
mod codes;
mod complete;
mod control;
mod dependencies;
mod enqueue;
mod keyring;

pub use claim::{ClaimRequest, Fetched};
pub use control::{BatchState, BatchStatus};
pub use keyring::RekeyReport;

use super::cipher::{Cipher, CipherError};
use super::digest::PayloadDigest;
use super::ids::{id_prefix, kind_of_id};
use super::keys::QueueKeys;
use super::scripts;
use crate::config::Config;
use crate::events;
use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation, Value};
use std::sync::Arc;
use std::time::Duration;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
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
    conn: ConnectionManager,
    client: redis::Client,
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
        let client = redis::Client::open(cfg.redis_url.as_str())?;
        let manager_cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(6)
            .set_max_delay(Duration::from_secs(2));
        let conn = client
            .get_connection_manager_with_config(manager_cfg)
            .await?;
        let store = JobStore {
            conn,
            client,
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

    /// The Redis client, for connections of one's own (blocking waits).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A clone of the shared connection.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// An invocation of a queue script on `keys`' queue, with the arguments every script
    /// takes first (see `common.lua`); the caller adds the script's own.
    fn script<'s>(&self, script: &'s Script, keys: &QueueKeys) -> ScriptInvocation<'s> {
        let mut inv = script.prepare_invoke();
        // KEYS[1] routes the call to the provider's slot; the scripts build the rest of
        // the keys from the prefix, which carries the same hash tag.
        inv.key(keys.provider().notify())
            .arg(keys.prefix())
            .arg(events::stream_key(keys.kind()))
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

    /// Runs a pipeline of script calls, loading the scripts first when Redis lost them
    /// (NOSCRIPT after a restart): pipelines do not reload by themselves.
    async fn query_pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        match pipe.query_async(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                for s in scripts::all() {
                    s.load_async(&mut conn).await?;
                }
                Ok(pipe.query_async(&mut conn).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The keys of the queue that holds job `id`.
    fn keys_for(&self, id: &str) -> Result<QueueKeys, QueueError> {
        kind_of_id(id)
            .map(QueueKeys::new)
            .ok_or_else(|| QueueError::BadId(id.to_string()))
    }
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
