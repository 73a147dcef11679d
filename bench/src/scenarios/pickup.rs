//! `pickup`: enqueue-to-handler-start latency on an idle worker, and on a worker draining a
//! bulk backlog.
//!
//! One job at a time: `Instant` before the enqueue call, `Instant` at handler start (sent
//! through a channel), then wait for the job to finish and let the worker go idle again
//! before the next. Ours: an in-process worker on `RedisBackend` (concurrency 50, blocking
//! wake-up on the notify list). The peer: apalis-redis polling every 10 ms. Then ours
//! again, the live jobs arriving while the same worker drains a backlog of bulk jobs of the
//! same kind (no-op handler), the backlog large enough to last the whole measurement.

use crate::harness;
use crate::peer::{self, Variant};
use crate::probe::Probe;
use crate::report::{round, times, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use apalis_redis::RedisStorage;
use onboard_shared::jobs::{CreateCustomerJob, Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, JobState, JobStore, Lane};
use redis::aio::ConnectionManager;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Jobs not counted at the start (connections, script loading).
const WARMUP: usize = 10;
/// Idle time between jobs, so the worker is waiting (not fetching) when the next arrives.
const GAP: Duration = Duration::from_millis(5);
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// p50, p99 and max of `samples` (ms), sorted in place.
fn percentiles(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i]
    };
    (at(0.50), at(0.99), samples[samples.len() - 1])
}

/// A queue under measurement: ours or the peer's.
trait Queue {
    /// Enqueues job `i`.
    async fn push(&mut self, i: usize) -> anyhow::Result<()>;
    /// Waits until job `i` (the one just pushed) has been acknowledged.
    async fn wait_done(&mut self, i: usize, deadline: Instant) -> anyhow::Result<()>;
}

/// Pushes `n` jobs (after [`WARMUP`] uncounted ones) one at a time, each timed from the
/// push to its handler's start, and lets the worker go idle before the next.
async fn one_at_a_time(
    queue: &mut impl Queue,
    starts: &mut mpsc::UnboundedReceiver<Instant>,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(n);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..n + WARMUP {
        let t0 = Instant::now();
        queue.push(i).await?;
        let started = tokio::time::timeout(STEP_TIMEOUT, starts.recv())
            .await
            .context("no handler started within 10 s")?
            .context("the worker is gone")?;
        if i >= WARMUP {
            samples.push(started.saturating_duration_since(t0).as_secs_f64() * 1e3);
        }
        queue.wait_done(i, Instant::now() + STEP_TIMEOUT).await?;
        tokio::time::sleep(GAP).await;
    }
    Ok(samples)
}

struct Ours {
    store: JobStore,
    last: String,
}

impl Queue for Ours {
    async fn push(&mut self, i: usize) -> anyhow::Result<()> {
        let job = Job::CreateCustomer(super::customer_payload(i));
        self.last = self
            .store
            .enqueue(&job, &EnqueueOptions::default())
            .await?
            .id;
        Ok(())
    }

    async fn wait_done(&mut self, _i: usize, deadline: Instant) -> anyhow::Result<()> {
        loop {
            let st = self.store.status(&self.last, false).await?;
            if st.state == JobState::Succeeded {
                return Ok(());
            }
            if st.state.is_final() || Instant::now() > deadline {
                bail!("job {} ended {} instead of succeeded", self.last, st.state);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

struct Peer {
    storage: RedisStorage<CreateCustomerJob>,
    conn: ConnectionManager,
}

impl Queue for Peer {
    async fn push(&mut self, i: usize) -> anyhow::Result<()> {
        peer::push_one(&mut self.storage, super::customer_payload(i)).await
    }

    async fn wait_done(&mut self, i: usize, deadline: Instant) -> anyhow::Result<()> {
        while peer::done(&mut self.conn, PEER_QUEUE).await? < (i + 1) as u64 {
            if Instant::now() > deadline {
                bail!("apalis-redis task {i} not acknowledged within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }
}

const PEER_QUEUE: &str = "bench-pickup";

async fn ours(redis: &harness::RedisServer, n: usize) -> anyhow::Result<Vec<f64>> {
    let store = harness::store(redis).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running =
        crate::ours::start_worker(&store, JobKind::CreateCustomer, 50, Probe::new(Some(tx)));
    let mut queue = Ours {
        store,
        last: String::new(),
    };
    let result = one_at_a_time(&mut queue, &mut rx, n).await;
    running.stop().await;
    result
}

/// Bulk jobs enqueued before the under-load run: enough to outlast it. The live jobs take
/// about 7 ms each (the gap, the pick-up, the acknowledgement), and the worker drains about
/// 60,000 bulk jobs/s beside them on a fast day. Once a job no longer cost a spawned task
/// (2026-12-04), 400,000 ran out; 100,000 had left only 4,318 in CI's quick run before.
fn backlog(quick: bool) -> usize {
    if quick {
        300_000
    } else {
        1_200_000
    }
}

/// Ours, live jobs timed while the worker drains a bulk backlog; also how many bulk jobs
/// were still queued at the end (0 would mean the load ran out).
async fn ours_under_bulk(
    redis: &harness::RedisServer,
    n: usize,
    bulk: usize,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let store = harness::store(redis).await?;
    let options = EnqueueOptions {
        lane: Some(Lane::Bulk),
        source: Some("bench-backfill".into()),
        ..Default::default()
    };
    let backlog: Vec<(Job, EnqueueOptions)> = (0..bulk)
        .map(|i| {
            let job = Job::CreateCustomer(super::customer_payload(1_000_000 + i));
            (job, options.clone())
        })
        .collect();
    harness::enqueue_chunks(&store, &backlog, 10_000).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running =
        crate::ours::start_worker(&store, JobKind::CreateCustomer, 50, Probe::live_starts(tx));
    let mut queue = Ours {
        store: store.clone(),
        last: String::new(),
    };
    let result = one_at_a_time(&mut queue, &mut rx, n).await;
    let left = store
        .queue_stats(JobKind::CreateCustomer)
        .await
        .context("queue_stats")?
        .queued_bulk;
    running.stop().await;
    Ok((result?, left))
}

async fn peer_run(redis: &harness::RedisServer, n: usize) -> anyhow::Result<Vec<f64>> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let storage = peer::storage(redis, PEER_QUEUE, Variant::Defaults).await?;
    let running = peer::start_worker(
        redis,
        PEER_QUEUE,
        Variant::Defaults,
        50,
        Probe::new(Some(tx)),
    )
    .await?;
    let conn = redis::Client::open(redis.url())?
        .get_connection_manager()
        .await?;
    let result = one_at_a_time(&mut Peer { storage, conn }, &mut rx, n).await;
    running.stop().await;
    result
}

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let n: usize = if quick { 200 } else { 1_000 };
    let redis = harness::start_redis().await?;
    let mut rec = RecordBuilder::new("pickup", quick);
    rec.figure("jobs", n as u64);

    let mut ours_ms = ours(&redis, n).await?;
    let (p50, p99, max) = percentiles(&mut ours_ms);
    rec.figure("p50_ms", round(p50, 3));
    rec.figure("p99_ms", round(p99, 3));
    rec.figure("max_ms", round(max, 3));

    harness::flush(&redis).await?;
    let mut peer_ms = peer_run(&redis, n).await?;
    let (pp50, pp99, pmax) = percentiles(&mut peer_ms);
    rec.peer("p50_ms", round(pp50, 3));
    rec.peer("p99_ms", round(pp99, 3));
    rec.peer("max_ms", round(pmax, 3));
    rec.ratio("p50", p50, pp50);
    rec.ratio("p99", p99, pp99);
    harness::flush(&redis).await?;
    let bulk = backlog(quick);
    let (mut loaded_ms, bulk_left) = ours_under_bulk(&redis, n, bulk).await?;
    if bulk_left == 0 {
        bail!("the bulk backlog of {bulk} ran out before the live jobs were measured");
    }
    let (lp50, lp99, lmax) = percentiles(&mut loaded_ms);
    rec.figure("under_bulk_p50_ms", round(lp50, 3));
    rec.figure("under_bulk_p99_ms", round(lp99, 3));
    rec.figure("under_bulk_max_ms", round(lmax, 3));
    rec.figure("under_bulk_backlog", bulk as u64);
    rec.figure("under_bulk_backlog_left", bulk_left);

    rec.note(format!("{WARMUP} warm-up jobs not counted; {} ms idle between jobs; each job waited to its acknowledgement before the next", GAP.as_millis()));
    rec.note(format!("peer: apalis-redis defaults, poll_with_interval({} ms) (an idle apalis worker is otherwise only woken by its heartbeat)", peer::POLL.as_millis()));

    let target = Target::new(
        "p99_ms (and p50_ms <= 1)",
        "<=",
        3.0,
        "idle pick-up p50 <= 1 ms, p99 <= 3 ms",
    );
    let summary = format!(
        "{n} jobs one at a time: ours p50 {p50:.2} ms, p99 {p99:.2} ms (max {max:.2}); apalis-redis p50 {pp50:.2} ms, p99 {pp99:.2} ms (max {pmax:.2}); ratio ours/peer p50 {:.2}, p99 {:.2}; ours while draining {bulk} bulk jobs p50 {lp50:.2} ms, p99 {lp99:.2} ms (max {lmax:.2}, {bulk_left} bulk left)",
        times(p50, pp50),
        times(p99, pp99),
    );
    Ok(rec.finish(
        target,
        p99,
        p50 <= 1.0,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
