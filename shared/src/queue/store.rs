//! `JobStore`: every operation on the queues, each one Lua script (or a pipeline of them).
//!
//! The store is cheap to clone (one multiplexed, auto-reconnecting connection underneath)
//! and is shared by the producer, the worker's backend and its acknowledgement layer.

use super::cipher::{Cipher, CipherError};
use super::keys::{self, kind_of_id, new_job_id, QueueKeys};
use super::pending::PendingEntry;
use super::record::*;
use super::scripts;
use crate::config::Config;
use crate::jobs::{Job, JobKind};
use crate::secret::Secret;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// A verify code that is not 6 digits.
    #[error("a verify code is exactly 6 digits")]
    BadCode,
}

/// A batch claimed by [`JobStore::fetch`].
#[derive(Debug)]
pub struct Fetched {
    /// Decoded, leased jobs.
    pub jobs: Vec<ClaimedJob>,
    /// Jobs whose payload did not decode; already moved to the dead-letter set.
    pub quarantined: usize,
    /// When the caller should look again even if nothing wakes it (Unix ms).
    pub next_wake_ms: u64,
}

/// Jobs per state of one queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueStats {
    /// The queue.
    pub kind: JobKind,
    /// Jobs in each live state, and totals of finished ones.
    pub states: HashMap<String, u64>,
    /// Age of the oldest due job, in ms (0 when none).
    pub oldest_ready_age_ms: u64,
    /// Leases that expired (the holder died or hung).
    pub leases_expired: u64,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The queue store. Clone freely.
#[derive(Clone)]
pub struct JobStore {
    conn: ConnectionManager,
    client: redis::Client,
    cipher: Arc<Cipher>,
    cfg: Arc<Config>,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore").finish_non_exhaustive()
    }
}

/// Arguments every script takes first (see `common.lua`).
struct ScriptCall<'a> {
    keys: &'a QueueKeys,
    events_maxlen: u64,
}

impl JobStore {
    /// Connects to Redis (reconnecting by itself later) and checks the encryption key.
    pub async fn connect(cfg: &Config) -> Result<JobStore, QueueError> {
        let cipher = Cipher::from_config(cfg)?;
        let client = redis::Client::open(cfg.redis_url.as_str())?;
        let manager_cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(6)
            .set_max_delay(Duration::from_secs(2));
        let conn = client
            .get_connection_manager_with_config(manager_cfg)
            .await?;
        Ok(JobStore {
            conn,
            client,
            cipher: Arc::new(cipher),
            cfg: Arc::new(cfg.clone()),
        })
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

    fn call<'a>(&self, keys: &'a QueueKeys) -> ScriptCall<'a> {
        ScriptCall {
            keys,
            events_maxlen: self.cfg.queue.events_maxlen,
        }
    }

    fn events_key(&self, keys: &QueueKeys) -> String {
        if self.cfg.redis_cluster {
            keys.cluster_events()
        } else {
            keys::EVENTS_KEY.to_string()
        }
    }

    fn invocation<'s>(
        &self,
        script: &'s Script,
        c: &ScriptCall<'_>,
    ) -> redis::ScriptInvocation<'s> {
        let mut inv = script.prepare_invoke();
        // KEYS[1] routes the call to the queue's slot; the scripts build the rest of the
        // keys from the prefix, which carries the same hash tag.
        inv.key(c.keys.ready())
            .arg(c.keys.prefix())
            .arg(self.events_key(c.keys))
            .arg(c.events_maxlen)
            .arg(now_ms())
            .arg(c.keys.kind().as_str());
        inv
    }

    fn hash_idempotency_key(kind: JobKind, key: &str) -> String {
        use sha2::{Digest, Sha256};
        // Hashed so that natural keys (e-mails, phone numbers) never appear in key names.
        let digest = Sha256::digest(format!("{}\0{}", kind.as_str(), key).as_bytes());
        hex::encode(&digest[..16])
    }

    fn max_attempts(&self, kind: JobKind, opts: &EnqueueOptions) -> u32 {
        opts.max_attempts
            .unwrap_or_else(|| self.cfg.queue.max_attempts.get(kind))
            .max(1)
    }

    /// Enqueues one job. Validation is the caller's (the producer validates every field).
    pub async fn enqueue(&self, job: &Job, opts: &EnqueueOptions) -> Result<Enqueued, QueueError> {
        let mut out = self
            .enqueue_many(std::slice::from_ref(&(job.clone(), opts.clone())))
            .await?;
        out.pop()
            .ok_or_else(|| QueueError::Protocol("enqueue returned nothing".into()))
    }

    /// Enqueues many jobs, grouped per queue, up to 500 per script call. Calls go out in
    /// pipelines of a few thousand jobs with several in flight, so encoding the next batch
    /// overlaps Redis running the previous one; they are sent in order, which keeps FIFO.
    /// Results come back in input order.
    pub async fn enqueue_many(
        &self,
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<Enqueued>, QueueError> {
        use futures::{StreamExt, TryStreamExt};
        const PER_PIPELINE: usize = 2_000;
        const IN_FLIGHT: usize = 4;
        let mut by_kind: HashMap<JobKind, Vec<usize>> = HashMap::new();
        for (i, (job, _)) in jobs.iter().enumerate() {
            by_kind.entry(job.kind()).or_default().push(i);
        }
        let batches: Vec<(JobKind, &[usize])> = by_kind
            .iter()
            .flat_map(|(kind, indexes)| indexes.chunks(PER_PIPELINE).map(move |c| (*kind, c)))
            .collect();
        let done: Vec<Vec<(usize, Enqueued)>> = futures::stream::iter(batches)
            .map(|(kind, indexes)| self.enqueue_batch(kind, indexes, jobs))
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut out: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        for (slot, enqueued) in done.into_iter().flatten() {
            out[slot] = Some(enqueued);
        }
        let out: Vec<Enqueued> = out
            .into_iter()
            .map(|e| e.ok_or_else(|| QueueError::Protocol("missing enqueue reply".into())))
            .collect::<Result<_, _>>()?;
        // Register new children with their parents (a parent may already have ended).
        let children: Vec<(JobKind, &str, &str)> = jobs
            .iter()
            .zip(&out)
            .filter(|(_, enq)| !enq.duplicate)
            .filter_map(|((job, opts), enq)| {
                opts.depends_on
                    .as_deref()
                    .map(|parent| (job.kind(), enq.id.as_str(), parent))
            })
            .collect();
        self.link_dependencies(&children).await?;
        Ok(out)
    }

    /// One pipeline of enqueue script calls for jobs `indexes` of one kind.
    async fn enqueue_batch(
        &self,
        kind: JobKind,
        indexes: &[usize],
        jobs: &[(Job, EnqueueOptions)],
    ) -> Result<Vec<(usize, Enqueued)>, QueueError> {
        const PER_CALL: usize = 500;
        let keys = QueueKeys::new(kind);
        let mut pipe = redis::pipe();
        for chunk in indexes.chunks(PER_CALL) {
            let c = self.call(&keys);
            let mut inv = self.invocation(&scripts::ENQUEUE, &c);
            inv.arg(chunk.len());
            for &i in chunk {
                let (job, opts) = &jobs[i];
                let payload = serde_json::to_vec(job)
                    .map_err(|e| QueueError::Protocol(format!("encode job: {e}")))?;
                inv.arg(new_job_id(kind))
                    .arg(self.cipher.seal(&payload))
                    .arg(self.max_attempts(kind, opts))
                    .arg(opts.run_at_ms.unwrap_or(0))
                    .arg(opts.depends_on.as_deref().unwrap_or(""))
                    .arg(
                        opts.idempotency_key
                            .as_deref()
                            .map(|k| Self::hash_idempotency_key(kind, k))
                            .unwrap_or_default(),
                    );
            }
            pipe.invoke_script(&inv);
        }
        let replies: Vec<Vec<Value>> = self.query_pipeline(&pipe).await?;
        let mut out = Vec::with_capacity(indexes.len());
        for (chunk, reply) in indexes.chunks(PER_CALL).zip(replies) {
            if reply.len() != chunk.len() * 2 {
                return Err(QueueError::Protocol("enqueue reply length".into()));
            }
            for (slot, pair) in chunk.iter().zip(reply.chunks(2)) {
                let enqueued = Enqueued {
                    id: value_string(&pair[0])?,
                    duplicate: value_u64(&pair[1])? == 1,
                };
                out.push((*slot, enqueued));
            }
        }
        Ok(out)
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

    async fn run(&self, inv: redis::ScriptInvocation<'_>) -> Result<Vec<Value>, QueueError> {
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Registers child `id` (of `kind`) with its parent; resolves it at once when the
    /// parent already ended. Also what the sweeper calls for children left waiting.
    pub async fn link_dependency(
        &self,
        kind: JobKind,
        id: &str,
        parent: &str,
    ) -> Result<(), QueueError> {
        self.link_dependencies(&[(kind, id, parent)]).await
    }

    /// [`JobStore::link_dependency`] for many `(kind, child id, parent id)` at once: one
    /// pipelined round trip; only children whose parent already ended need another.
    async fn link_dependencies(
        &self,
        children: &[(JobKind, &str, &str)],
    ) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        let mut linked = Vec::with_capacity(children.len());
        for &(kind, id, parent) in children {
            let Some(parent_kind) = kind_of_id(parent) else {
                self.resolve_dependency(
                    kind,
                    id,
                    false,
                    &format!("parent {parent} is not a job id"),
                )
                .await?;
                continue;
            };
            let pkeys = QueueKeys::new(parent_kind);
            let c = self.call(&pkeys);
            let mut inv = self.invocation(&scripts::ADD_DEPENDENT, &c);
            inv.arg(parent).arg(format!("{}|{}", kind.as_str(), id));
            pipe.invoke_script(&inv);
            linked.push((kind, id, parent));
        }
        if linked.is_empty() {
            return Ok(());
        }
        let replies: Vec<Vec<Value>> = self.query_pipeline(&pipe).await?;
        for ((kind, id, parent), reply) in linked.into_iter().zip(replies) {
            match first_str(&reply)?.as_str() {
                "pending" => {}
                "succeeded" => self.resolve_dependency(kind, id, true, "").await?,
                "failed" => {
                    let state = reply
                        .get(1)
                        .map(value_string)
                        .transpose()?
                        .unwrap_or_default();
                    self.resolve_dependency(kind, id, false, &format!("parent {parent} is {state}"))
                        .await?
                }
                _ => {
                    self.resolve_dependency(
                        kind,
                        id,
                        false,
                        &format!("parent {parent} does not exist"),
                    )
                    .await?
                }
            }
        }
        Ok(())
    }

    async fn resolve_dependency(
        &self,
        kind: JobKind,
        id: &str,
        ok: bool,
        why: &str,
    ) -> Result<(), QueueError> {
        let keys = QueueKeys::new(kind);
        let c = self.call(&keys);
        let err = ErrorRecord {
            class: "dependency".into(),
            code: "DependencyFailed".into(),
            message: format!("dependency failed: {why}"),
        };
        let mut inv = self.invocation(&scripts::RESOLVE_DEPENDENCY, &c);
        inv.arg(id)
            .arg(if ok { "1" } else { "0" })
            .arg(err.to_json());
        self.run(inv).await?;
        Ok(())
    }

    /// Resolves the children a finished parent returned ("kind|id" refs).
    async fn resolve_children(
        &self,
        parent: &str,
        children: &[Value],
        ok: bool,
    ) -> Result<(), QueueError> {
        for child in children {
            let child = value_string(child)?;
            let Some((kind, id)) = child.split_once('|') else {
                continue;
            };
            let Ok(kind) = kind.parse::<JobKind>() else {
                continue;
            };
            let why = format!("parent {parent} failed");
            self.resolve_dependency(kind, id, ok, &why).await?;
        }
        Ok(())
    }

    /// Claims up to `batch` due jobs of `kind`, leased for the configured lease. Jobs whose
    /// payload does not decode are quarantined here and not returned.
    pub async fn fetch(
        &self,
        kind: JobKind,
        batch: usize,
        token_prefix: &str,
    ) -> Result<Fetched, QueueError> {
        let keys = QueueKeys::new(kind);
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::FETCH, &c);
        inv.arg(batch.max(1))
            .arg(self.cfg.queue.lease_ms)
            .arg(token_prefix);
        let reply = self.run(inv).await?;
        if reply.len() < 2 {
            return Err(QueueError::Protocol("fetch reply too short".into()));
        }
        let next_wake_ms = value_u64(&reply[0])?;
        let n = value_u64(&reply[1])? as usize;
        let fields = &reply[2..];
        if fields.len() != n * 9 {
            return Err(QueueError::Protocol("fetch reply length".into()));
        }
        let mut jobs = Vec::with_capacity(n);
        let mut quarantined = 0;
        for f in fields.chunks(9) {
            let id = value_string(&f[0])?;
            let token = value_string(&f[4])?;
            match self.decode_claim(kind, &id, f) {
                Ok(job) => jobs.push(job),
                Err(reason) => {
                    quarantined += 1;
                    self.quarantine(&keys, &id, &token, &reason).await?;
                }
            }
        }
        Ok(Fetched {
            jobs,
            quarantined,
            next_wake_ms,
        })
    }

    fn decode_claim(&self, kind: JobKind, id: &str, f: &[Value]) -> Result<ClaimedJob, String> {
        let payload = value_bytes(&f[1]).map_err(|e| e.to_string())?;
        let plain = self
            .cipher
            .open(&payload)
            .map_err(|e| format!("payload: {e}"))?;
        let job: Job =
            serde_json::from_slice(&plain).map_err(|e| format!("payload does not decode: {e}"))?;
        if job.kind() != kind {
            return Err(format!(
                "payload is a {} job in the {} queue",
                job.kind(),
                kind
            ));
        }
        let num = |v: &Value| {
            value_u64(v)
                .map(|n| n as u32)
                .map_err(|e| format!("metadata: {e}"))
        };
        let code = value_bytes(&f[7]).map_err(|e| e.to_string())?;
        let verify_code = if code.is_empty() {
            None
        } else {
            let plain = self
                .cipher
                .open(&code)
                .map_err(|e| format!("verify code: {e}"))?;
            Some(Secret::new(
                String::from_utf8(plain).map_err(|_| "verify code is not UTF-8".to_string())?,
            ))
        };
        let phase = match value_string(&f[6]).map_err(|e| e.to_string())?.as_str() {
            "verify" => CodePhase::Verify,
            _ => CodePhase::Send,
        };
        Ok(ClaimedJob {
            id: id.to_string(),
            job,
            attempt: num(&f[2])?,
            max_attempts: num(&f[3])?,
            token: value_string(&f[4]).map_err(|e| e.to_string())?,
            uncertain: num(&f[5])? == 1,
            phase,
            verify_code,
            code_failures: num(&f[8])?,
        })
    }

    async fn quarantine(
        &self,
        keys: &QueueKeys,
        id: &str,
        token: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        tracing::warn!(job_id = id, kind = %keys.kind(), reason, "quarantined an undecodable job");
        let err = ErrorRecord {
            class: "undecodable".into(),
            code: "Undecodable".into(),
            message: reason.to_string(),
        };
        let c = self.call(keys);
        let mut inv = self.invocation(&scripts::QUARANTINE, &c);
        inv.arg(id).arg(token).arg(err.to_json());
        let reply = self.run(inv).await?;
        if first_str(&reply)? == "dead" {
            self.resolve_children(id, &reply[1..], false).await?;
        }
        Ok(())
    }

    /// Records an attempt's outcome (checked against the lease token) and resolves the
    /// job's dependents when it ended.
    pub async fn ack(
        &self,
        kind: JobKind,
        id: &str,
        token: &str,
        ack: &Ack,
    ) -> Result<AckStatus, QueueError> {
        let keys = QueueKeys::new(kind);
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::ACK, &c);
        inv.arg(id).arg(token);
        match ack {
            Ack::Succeeded(result) => {
                let statuses = self.ack_succeeded(kind, &[(id, token, result)]).await?;
                return statuses
                    .into_iter()
                    .next()
                    .ok_or_else(|| QueueError::Protocol("empty ack reply".into()));
            }
            Ack::Retry {
                delay_ms,
                error,
                uncertain,
            } => {
                inv.arg("retry")
                    .arg(*delay_ms)
                    .arg(error.to_json())
                    .arg(if *uncertain { "1" } else { "0" });
            }
            Ack::Defer { delay_ms, error } => {
                inv.arg("defer").arg(*delay_ms).arg(error.to_json());
            }
            Ack::Dead(error) => {
                inv.arg("dead").arg(error.to_json());
            }
            Ack::AwaitCode {
                deadline_ms,
                masked_phone,
            } => {
                inv.arg("await_code").arg(*deadline_ms).arg(masked_phone);
            }
            Ack::CodeRejected {
                deadline_ms,
                max_failures,
                error,
            } => {
                inv.arg("code_rejected")
                    .arg(*deadline_ms)
                    .arg(*max_failures)
                    .arg(error.to_json());
            }
            Ack::Release => {
                inv.arg("release");
            }
        }
        let reply = self.run(inv).await?;
        let status = match first_str(&reply)?.as_str() {
            "dead" => {
                self.resolve_children(id, &reply[1..], false).await?;
                AckStatus::Dead
            }
            "retry" => AckStatus::Retry,
            "deferred" => AckStatus::Deferred,
            "awaiting_code" => AckStatus::AwaitingCode,
            "released" => AckStatus::Released,
            "stale" => AckStatus::Stale,
            other => return Err(QueueError::Protocol(format!("ack answered {other}"))),
        };
        Ok(status)
    }

    /// Records the successes of jobs `(id, lease token, result)` of one queue with one
    /// script call, and lets their dependents run. Returns each job's status, in order:
    /// `Succeeded`, or `Stale` when its lease had been lost.
    pub async fn ack_succeeded(
        &self,
        kind: JobKind,
        jobs: &[(&str, &str, &serde_json::Value)],
    ) -> Result<Vec<AckStatus>, QueueError> {
        let keys = QueueKeys::new(kind);
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::ACK_SUCCEEDED, &c);
        inv.arg(self.cfg.queue.retention_secs.max(1))
            .arg(jobs.len());
        for (id, token, result) in jobs {
            let plain = serde_json::to_vec(result)
                .map_err(|e| QueueError::Protocol(format!("encode result: {e}")))?;
            inv.arg(*id).arg(*token).arg(self.cipher.seal(&plain));
        }
        let reply = self.run(inv).await?;
        let short = || QueueError::Protocol("ack_succeeded reply too short".into());
        let mut statuses = Vec::with_capacity(jobs.len());
        let mut rest = reply.as_slice();
        for (id, _, _) in jobs {
            let [status, count, tail @ ..] = rest else {
                return Err(short());
            };
            let count = value_u64(count)? as usize;
            let (children, tail) = tail.split_at_checked(count).ok_or_else(short)?;
            rest = tail;
            statuses.push(match value_string(status)?.as_str() {
                "succeeded" => {
                    // The success is recorded whatever happens next: a child not resolved
                    // here is found by the sweeper's check of waiting jobs.
                    if let Err(e) = self.resolve_children(id, children, true).await {
                        tracing::warn!(job_id = %id, error = %e, "dependents not resolved yet; the sweeper will");
                    }
                    AckStatus::Succeeded
                }
                "stale" => AckStatus::Stale,
                other => return Err(QueueError::Protocol(format!("ack answered {other}"))),
            });
        }
        Ok(statuses)
    }

    /// Extends a running job's lease. `false` means the lease was lost.
    pub async fn renew(&self, kind: JobKind, id: &str, token: &str) -> Result<bool, QueueError> {
        let keys = QueueKeys::new(kind);
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::RENEW, &c);
        inv.arg(id).arg(token).arg(self.cfg.queue.lease_ms);
        let mut conn = self.conn.clone();
        let renewed: i64 = inv.invoke_async(&mut conn).await?;
        Ok(renewed == 1)
    }

    fn keys_for(&self, id: &str) -> Result<QueueKeys, QueueError> {
        kind_of_id(id)
            .map(QueueKeys::new)
            .ok_or_else(|| QueueError::BadId(id.to_string()))
    }

    fn wrong_state(id: &str, reply: &[Value], expected: &'static str) -> QueueError {
        let state = reply
            .get(1)
            .and_then(|v| value_string(v).ok())
            .unwrap_or_default();
        if state == "missing" {
            QueueError::NotFound(id.to_string())
        } else {
            QueueError::WrongState {
                id: id.to_string(),
                state,
                expected,
            }
        }
    }

    /// Supplies the verify code to a job awaiting one; it resumes at most once.
    pub async fn supply_code(&self, id: &str, code: &Secret) -> Result<(), QueueError> {
        let c_ok = code.expose().len() == 6 && code.expose().bytes().all(|b| b.is_ascii_digit());
        if !c_ok {
            return Err(QueueError::BadCode);
        }
        let keys = self.keys_for(id)?;
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::SUPPLY_CODE, &c);
        inv.arg(id).arg(self.cipher.seal(code.expose().as_bytes()));
        let reply = self.run(inv).await?;
        match first_str(&reply)?.as_str() {
            "ok" => Ok(()),
            _ => Err(Self::wrong_state(id, &reply, "not awaiting a code")),
        }
    }

    /// Sends an `expired` or `awaiting_code` job back through phase 1 (a new code).
    pub async fn resend_code(&self, id: &str) -> Result<(), QueueError> {
        let keys = self.keys_for(id)?;
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::RESEND_CODE, &c);
        inv.arg(id);
        let reply = self.run(inv).await?;
        match first_str(&reply)?.as_str() {
            "ok" => Ok(()),
            _ => Err(Self::wrong_state(
                id,
                &reply,
                "only an expired or awaiting_code job can be sent a new code",
            )),
        }
    }

    /// Moves jobs whose code deadline passed to `expired`; returns how many.
    pub async fn expire_codes(&self, kind: JobKind) -> Result<u64, QueueError> {
        let keys = QueueKeys::new(kind);
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::EXPIRE_CODES, &c);
        inv.arg(self.cfg.queue.retention_secs.max(1));
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Re-checks children that have waited longer than `older_than` (a crash between a
    /// parent's ack and the resolution of its children leaves them waiting).
    pub async fn recheck_waiting(
        &self,
        kind: JobKind,
        older_than: Duration,
    ) -> Result<usize, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut conn = self.conn.clone();
        let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
        let ids: Vec<String> = conn
            .zrangebyscore_limit(keys.set("waiting"), "-inf", cutoff, 0, 200)
            .await?;
        for id in &ids {
            let parent: Option<String> = conn.hget(keys.job(id), "parent").await?;
            // Push the next look further out before looking, so busy sweepers spread out.
            let _: () = conn.zadd(keys.set("waiting"), id, now_ms()).await?;
            match parent {
                Some(p) if !p.is_empty() => self.link_dependency(kind, id, &p).await?,
                _ => self.resolve_dependency(kind, id, true, "").await?,
            }
        }
        Ok(ids.len())
    }

    /// One job's status, or `NotFound`. Secret result fields are `[redacted]` unless
    /// `reveal_secrets`.
    pub async fn status(&self, id: &str, reveal_secrets: bool) -> Result<JobStatus, QueueError> {
        let keys = self.keys_for(id)?;
        let mut conn = self.conn.clone();
        // Atomic, so a fetch cannot move the job from `pending` to its record in between.
        let (h, pending): (HashMap<String, Vec<u8>>, Option<Vec<u8>>) = redis::pipe()
            .atomic()
            .hgetall(keys.job(id))
            .hget(keys.pending(), id)
            .query_async(&mut conn)
            .await?;
        if h.is_empty() {
            return match pending {
                Some(raw) => Self::pending_status(id, keys.kind(), &raw),
                None => Err(QueueError::NotFound(id.to_string())),
            };
        }
        let text = |k: &str| h.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        let num = |k: &str| text(k).and_then(|s| s.parse::<u64>().ok());
        let state_text = text("state").unwrap_or_default();
        let state = JobState::parse(&state_text).ok_or_else(|| {
            QueueError::Protocol(format!("job {id} has unknown state {state_text:?}"))
        })?;
        let result = match h.get("result").filter(|r| !r.is_empty()) {
            Some(sealed) => {
                let plain = self.cipher.open(sealed)?;
                let mut v: serde_json::Value = serde_json::from_slice(&plain)
                    .map_err(|e| QueueError::Protocol(format!("stored result: {e}")))?;
                if !reveal_secrets {
                    redact_secrets(&mut v);
                }
                Some(v)
            }
            None => None,
        };
        let last_error = text("error")
            .filter(|e| !e.is_empty())
            .and_then(|e| serde_json::from_str::<ErrorRecord>(&e).ok());
        Ok(JobStatus {
            id: id.to_string(),
            kind: keys.kind(),
            state,
            attempts: num("attempts").unwrap_or(0) as u32,
            max_attempts: num("max_attempts").unwrap_or(0) as u32,
            throttles: num("throttles").unwrap_or(0) as u32,
            code_failures: num("code_failures").unwrap_or(0) as u32,
            created_ms: num("created_ms").unwrap_or(0),
            updated_ms: num("updated_ms").unwrap_or(0),
            run_at_ms: matches!(state, JobState::RetryScheduled | JobState::Scheduled)
                .then(|| num("run_at_ms"))
                .flatten(),
            deadline_ms: (state == JobState::AwaitingCode)
                .then(|| num("deadline_ms"))
                .flatten(),
            depends_on: text("parent").filter(|p| !p.is_empty()),
            uncertain: num("uncertain") == Some(1),
            last_error,
            result,
        })
    }

    /// The status of a job enqueued in bulk that no worker has claimed yet.
    fn pending_status(id: &str, kind: JobKind, raw: &[u8]) -> Result<JobStatus, QueueError> {
        let entry = PendingEntry::parse(raw).ok_or_else(|| {
            QueueError::Protocol(format!("job {id} has a malformed pending entry"))
        })?;
        Ok(JobStatus {
            id: id.to_string(),
            kind,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: entry.max_attempts,
            throttles: 0,
            code_failures: 0,
            created_ms: entry.created_ms,
            updated_ms: entry.created_ms,
            run_at_ms: None,
            deadline_ms: None,
            depends_on: None,
            uncertain: false,
            last_error: None,
            result: None,
        })
    }

    /// Dead jobs of one kind, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        kind: JobKind,
        limit: usize,
    ) -> Result<Vec<JobStatus>, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrange(keys.set("dead"), 0, limit.max(1) as isize - 1)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.status(&id, false).await {
                Ok(s) => out.push(s),
                Err(QueueError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Brings a dead job back to the queue (or to waiting, when it has a parent).
    pub async fn retry_dead(&self, id: &str) -> Result<JobState, QueueError> {
        let keys = self.keys_for(id)?;
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::DEAD_RETRY, &c);
        inv.arg(id);
        let reply = self.run(inv).await?;
        match first_str(&reply)?.as_str() {
            "queued" => Ok(JobState::Queued),
            "waiting" => {
                let parent = value_string(&reply[1])?;
                self.link_dependency(keys.kind(), id, &parent).await?;
                Ok(JobState::Waiting)
            }
            _ => Err(Self::wrong_state(
                id,
                &reply,
                "only a dead job can be retried",
            )),
        }
    }

    /// Deletes a dead job for good.
    pub async fn purge_dead(&self, id: &str) -> Result<(), QueueError> {
        let keys = self.keys_for(id)?;
        let c = self.call(&keys);
        let mut inv = self.invocation(&scripts::DEAD_PURGE, &c);
        inv.arg(id);
        let reply = self.run(inv).await?;
        match first_str(&reply)?.as_str() {
            "purged" => Ok(()),
            _ => Err(Self::wrong_state(
                id,
                &reply,
                "only a dead job can be purged",
            )),
        }
    }

    /// Jobs per state for every queue.
    pub async fn stats(&self) -> Result<Vec<QueueStats>, QueueError> {
        let mut out = Vec::new();
        for kind in JobKind::ALL {
            out.push(self.queue_stats(kind).await?);
        }
        Ok(out)
    }

    /// Jobs per state of one queue.
    pub async fn queue_stats(&self, kind: JobKind) -> Result<QueueStats, QueueError> {
        let keys = QueueKeys::new(kind);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.llen(keys.ready())
            .zcard(keys.set("scheduled"))
            .zcard(keys.set("leased"))
            .zcard(keys.set("dead"))
            .zcard(keys.set("awaiting"))
            .zcard(keys.set("waiting"))
            .hgetall(keys.counts())
            .lindex(keys.ready(), 0);
        #[allow(clippy::type_complexity)]
        let (ready, scheduled, leased, dead, awaiting, waiting, counts, head): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            HashMap<String, u64>,
            Option<String>,
        ) = pipe.query_async(&mut conn).await?;
        let oldest_ready_age_ms = match head {
            Some(id) => {
                let (updated, pending): (Option<u64>, Option<Vec<u8>>) = redis::pipe()
                    .hget(keys.job(&id), "updated_ms")
                    .hget(keys.pending(), &id)
                    .query_async(&mut conn)
                    .await?;
                let since = updated.or_else(|| {
                    pending
                        .as_deref()
                        .and_then(PendingEntry::parse)
                        .map(|e| e.created_ms)
                });
                since.map(|u| now_ms().saturating_sub(u)).unwrap_or(0)
            }
            None => 0,
        };
        let mut states = HashMap::new();
        states.insert("queued".to_string(), ready);
        states.insert("scheduled_or_retrying".to_string(), scheduled);
        states.insert("running".to_string(), leased);
        states.insert("dead".to_string(), dead);
        states.insert("awaiting_code".to_string(), awaiting);
        states.insert("waiting".to_string(), waiting);
        for k in ["enqueued", "succeeded", "expired"] {
            states.insert(format!("{k}_total"), counts.get(k).copied().unwrap_or(0));
        }
        Ok(QueueStats {
            kind,
            states,
            oldest_ready_age_ms,
            leases_expired: counts.get("leases_expired").copied().unwrap_or(0),
        })
    }
}

/// Replaces every object member whose name says it is a secret.
fn redact_secrets(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k.to_ascii_lowercase().contains("secret") {
                    *val = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_secrets(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

fn value_bytes(v: &Value) -> Result<Vec<u8>, QueueError> {
    match v {
        Value::BulkString(b) => Ok(b.clone()),
        Value::SimpleString(s) => Ok(s.as_bytes().to_vec()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        Value::Nil => Ok(Vec::new()),
        other => Err(QueueError::Protocol(format!(
            "expected bytes, got {other:?}"
        ))),
    }
}

fn value_string(v: &Value) -> Result<String, QueueError> {
    String::from_utf8(value_bytes(v)?).map_err(|_| QueueError::Protocol("non-UTF-8 text".into()))
}

fn value_u64(v: &Value) -> Result<u64, QueueError> {
    match v {
        Value::Int(i) => Ok(*i as u64),
        other => value_string(other)?
            .parse()
            .map_err(|_| QueueError::Protocol(format!("expected a number, got {other:?}"))),
    }
}

fn first_str(reply: &[Value]) -> Result<String, QueueError> {
    reply
        .first()
        .map(value_string)
        .transpose()?
        .ok_or_else(|| QueueError::Protocol("empty script reply".into()))
}
