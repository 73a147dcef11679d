//! The peer: apalis-redis 1.0.0 (`RedisStorage`), measured the same way as ours on the same
//! private redis-server: bulk push, no-op drain, idle pick-up.
//!
//! An idle apalis worker is only woken by its own activity or a heartbeat, so every peer
//! worker polls an empty queue every 10 ms (`poll_with_interval`), as DESIGN.md's figures did.

use crate::harness::{rate, RedisServer};
use crate::probe::{until, Probe, Running};
use anyhow::{bail, Context};
use apalis::prelude::*;
use apalis_core::backend::ext::BackendExt;
use apalis_core::backend::TaskSink;
use apalis_core::error::BoxDynError;
use apalis_core::worker::ext::parallelize::ParallelizeExt;
use apalis_redis::{Config as PeerConfig, ConnectionManager, RedisStorage};
use onboard_shared::jobs::CreateCustomerJob;
use std::time::{Duration, Instant};

/// How an idle peer worker looks for new tasks.
pub const POLL: Duration = Duration::from_millis(10);

/// The peer's configuration variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `Config::default()`: per-task lock (lease) and persisted results.
    Defaults,
    /// `lock_tasks(false)`: results still acknowledged.
    NoLock,
    /// `lock_tasks(false)` and `persist_results(false)`: no lock, no ack.
    NoLockNoAck,
}

impl Variant {
    /// A short label for records.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Defaults => "defaults",
            Variant::NoLock => "lock_off",
            Variant::NoLockNoAck => "lock_off_ack_off",
        }
    }

    fn config(self, queue: &str) -> PeerConfig {
        let cfg = PeerConfig::default().queue(queue);
        match self {
            Variant::Defaults => cfg,
            Variant::NoLock => cfg.lock_tasks(false),
            Variant::NoLockNoAck => cfg.lock_tasks(false).persist_results(false),
        }
    }
}

async fn connect(redis: &RedisServer) -> anyhow::Result<ConnectionManager> {
    apalis_redis::connect(redis.url())
        .await
        .context("apalis-redis connect")
}

/// A storage for `queue`.
pub async fn storage(
    redis: &RedisServer,
    queue: &str,
    variant: Variant,
) -> anyhow::Result<RedisStorage<CreateCustomerJob>> {
    Ok(RedisStorage::new(connect(redis).await?).with_config(variant.config(queue)))
}

/// `push_bulk` of `jobs` in chunks of `chunk`; returns jobs/s.
pub async fn push_bulk(
    redis: &RedisServer,
    queue: &str,
    jobs: &[CreateCustomerJob],
    chunk: usize,
) -> anyhow::Result<f64> {
    let mut storage = storage(redis, queue, Variant::Defaults).await?;
    let start = Instant::now();
    for part in jobs.chunks(chunk) {
        storage
            .push_bulk(part.to_vec())
            .await
            .map_err(|e| anyhow::anyhow!("apalis-redis push_bulk: {e}"))?;
    }
    let took = start.elapsed();
    let pushed = queued(redis, queue).await?;
    if pushed < jobs.len() as u64 {
        bail!(
            "apalis-redis holds {pushed} tasks after pushing {}",
            jobs.len()
        );
    }
    Ok(rate(jobs.len() as u64, took))
}

/// Tasks stored in `queue` (its data hash).
pub async fn queued(redis: &RedisServer, queue: &str) -> anyhow::Result<u64> {
    let cfg = PeerConfig::default().queue(queue);
    let mut conn = connect(redis).await?;
    let n: u64 = redis::cmd("HLEN")
        .arg(cfg.job_data_hash())
        .query_async(&mut conn)
        .await?;
    Ok(n)
}

/// Moves every task of `queue`'s scheduled set onto its active list, 5,000 at a time;
/// returns how many.
///
/// apalis-redis 1.0.0 pushes every task into the scheduled set (`run_at` is at least
/// "now"), and `fetch_next.lua` promotes ALL due ones with one `unpack`, which Lua refuses
/// beyond about 8,000 values ("too many results to unpack"): the worker then dies on its
/// first fetch. A backlog larger than that is promoted here, before the worker starts, as
/// `fetch_next.lua` would have done.
pub async fn promote_scheduled(redis: &RedisServer, queue: &str) -> anyhow::Result<u64> {
    let cfg = PeerConfig::default().queue(queue);
    let mut conn = connect(redis).await?;
    let mut moved = 0u64;
    loop {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(cfg.scheduled_jobs_set())
            .arg(0)
            .arg(4_999)
            .query_async(&mut conn)
            .await?;
        if ids.is_empty() {
            break;
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .rpush(cfg.active_jobs_list(), &ids)
            .ignore()
            .zrem(cfg.scheduled_jobs_set(), &ids)
            .ignore();
        let () = pipe.query_async(&mut conn).await?;
        moved += ids.len() as u64;
    }
    let mut pipe = redis::pipe();
    pipe.del(cfg.signal_list())
        .ignore()
        .lpush(cfg.signal_list(), 1)
        .ignore();
    let () = pipe.query_async(&mut conn).await?;
    Ok(moved)
}

/// Tasks acknowledged as done in `queue` (its done set).
pub async fn done(conn: &mut ConnectionManager, queue: &str) -> anyhow::Result<u64> {
    let cfg = PeerConfig::default().queue(queue);
    let n: u64 = redis::cmd("SCARD")
        .arg(cfg.done_jobs_set())
        .query_async(conn)
        .await?;
    Ok(n)
}

/// The no-op handler; reports its start to the probe.
async fn noop(_job: CreateCustomerJob, probe: Data<Probe>) -> Result<(), BoxDynError> {
    probe.started();
    probe.finished();
    Ok(())
}

/// Starts a no-op apalis-redis worker on `queue` with `concurrency` slots, handlers spread
/// over the runtime's threads.
pub async fn start_worker(
    redis: &RedisServer,
    queue: &str,
    variant: Variant,
    concurrency: usize,
    probe: Probe,
) -> anyhow::Result<Running> {
    let storage = storage(redis, queue, variant)
        .await?
        .poll_with_interval(POLL);
    let worker = WorkerBuilder::new(format!("peer-{queue}"))
        .backend(storage)
        .concurrency(concurrency)
        .parallelize(tokio::spawn)
        .data(probe)
        .build(noop);
    Ok(Running::spawn(|stop| worker.run_with_ctx(until(stop))))
}

/// Drains `n` pre-pushed tasks of `queue` with a no-op worker (concurrency 50); returns
/// jobs/s from worker start to the last acknowledgement (to the last handler call when
/// acks are off) and how many finished: fewer than `n` when `timeout` passed first (the
/// rate is then the rate so far).
pub async fn drain(
    redis: &RedisServer,
    queue: &str,
    variant: Variant,
    n: u64,
    timeout: Duration,
) -> anyhow::Result<(f64, u64)> {
    promote_scheduled(redis, queue).await?;
    let probe = Probe::new(None);
    let mut conn = connect(redis).await?;
    let start = Instant::now();
    let running = start_worker(redis, queue, variant, 50, probe.clone()).await?;
    loop {
        let finished = if variant == Variant::NoLockNoAck {
            probe.finished_count()
        } else {
            done(&mut conn, queue).await?
        };
        if finished >= n {
            break;
        }
        if running.ended() {
            bail!(
                "the apalis-redis ({}) worker stopped after {finished} of {n} tasks (handler ran {} times): {}",
                variant.label(),
                probe.finished_count(),
                running.outcome().await
            );
        }
        if start.elapsed() > timeout {
            // Too slow to finish: the rate so far is the figure.
            let took = start.elapsed();
            running.stop().await;
            return Ok((rate(finished, took), finished));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed();
    running.stop().await;
    Ok((rate(n, took), n))
}

/// Pushes one task to `storage`.
pub async fn push_one(
    storage: &mut RedisStorage<CreateCustomerJob>,
    job: CreateCustomerJob,
) -> anyhow::Result<()> {
    storage
        .push(job)
        .await
        .map_err(|e| anyhow::anyhow!("apalis-redis push: {e}"))
}
