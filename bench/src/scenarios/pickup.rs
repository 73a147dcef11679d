//! `pickup`: enqueue-to-handler-start latency on an idle worker.
//!
//! One job at a time: `Instant` before the enqueue call, `Instant` at handler start (sent
//! through a channel), then wait for the job to finish and let the worker go idle again
//! before the next. Ours: an in-process worker on `RedisBackend` (concurrency 50, blocking
//! wake-up on the notify list). The peer: apalis-redis polling every 10 ms.

use crate::harness;
use crate::peer::{self, Variant};
use crate::probe::Probe;
use crate::report::{round, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use onboard_shared::jobs::{CreateCustomerJob, Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, JobState};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Jobs not counted at the start (connections, script loading).
const WARMUP: usize = 10;
/// Idle time between jobs, so the worker is waiting (not fetching) when the next arrives.
const GAP: Duration = Duration::from_millis(5);
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

fn payload(i: usize) -> CreateCustomerJob {
    CreateCustomerJob {
        customer_id: format!("p{i}"),
        country_code: "86".into(),
        phone_number: format!("1380000{:04}", i % 10_000),
    }
}

/// p50, p99 and max of `samples` (ms), sorted in place.
fn percentiles(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i]
    };
    (at(0.50), at(0.99), samples[samples.len() - 1])
}

async fn next_start(rx: &mut mpsc::UnboundedReceiver<Instant>) -> anyhow::Result<Instant> {
    tokio::time::timeout(STEP_TIMEOUT, rx.recv())
        .await
        .context("no handler started within 10 s")?
        .context("the worker is gone")
}

async fn ours(redis: &harness::RedisServer, n: usize) -> anyhow::Result<Vec<f64>> {
    let store = harness::store(redis).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running =
        crate::ours::start_worker(&store, JobKind::CreateCustomer, 50, Probe::new(Some(tx)));
    let mut samples = Vec::with_capacity(n);
    let result: anyhow::Result<()> = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 0..n + WARMUP {
            let job = Job::CreateCustomer(payload(i));
            let t0 = Instant::now();
            let enq = store.enqueue(&job, &EnqueueOptions::default()).await?;
            let started = next_start(&mut rx).await?;
            if i >= WARMUP {
                samples.push(started.saturating_duration_since(t0).as_secs_f64() * 1e3);
            }
            let deadline = Instant::now() + STEP_TIMEOUT;
            loop {
                let st = store.status(&enq.id, false).await?;
                if st.state == JobState::Succeeded {
                    break;
                }
                if st.state.is_final() || Instant::now() > deadline {
                    bail!("job {} ended {} instead of succeeded", enq.id, st.state);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(GAP).await;
        }
        Ok(())
    }
    .await;
    running.stop().await;
    result?;
    Ok(samples)
}

async fn peer_run(redis: &harness::RedisServer, n: usize) -> anyhow::Result<Vec<f64>> {
    const QUEUE: &str = "bench-pickup";
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut storage = peer::storage(redis, QUEUE, Variant::Defaults).await?;
    let running =
        peer::start_worker(redis, QUEUE, Variant::Defaults, 50, Probe::new(Some(tx))).await?;
    let client = redis::Client::open(redis.url())?;
    let mut conn = client.get_connection_manager().await?;
    let mut samples = Vec::with_capacity(n);
    let result: anyhow::Result<()> = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 0..n + WARMUP {
            let t0 = Instant::now();
            peer::push_one(&mut storage, payload(i)).await?;
            let started = next_start(&mut rx).await?;
            if i >= WARMUP {
                samples.push(started.saturating_duration_since(t0).as_secs_f64() * 1e3);
            }
            let deadline = Instant::now() + STEP_TIMEOUT;
            while peer::done(&mut conn, QUEUE).await? < (i + 1) as u64 {
                if Instant::now() > deadline {
                    bail!("apalis-redis task {i} not acknowledged within 10 s");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(GAP).await;
        }
        Ok(())
    }
    .await;
    running.stop().await;
    result?;
    Ok(samples)
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
    rec.note(format!("{WARMUP} warm-up jobs not counted; {} ms idle between jobs; each job waited to its acknowledgement before the next", GAP.as_millis()));
    rec.note(format!("peer: apalis-redis defaults, poll_with_interval({} ms) (an idle apalis worker is otherwise only woken by its heartbeat)", peer::POLL.as_millis()));

    let target = Target::new(
        "p99_ms (and p50_ms <= 1)",
        "<=",
        3.0,
        "idle pick-up p50 <= 1 ms, p99 <= 3 ms",
    );
    let summary = format!(
        "{n} jobs one at a time: ours p50 {p50:.2} ms, p99 {p99:.2} ms (max {max:.2}); apalis-redis p50 {pp50:.2} ms, p99 {pp99:.2} ms (max {pmax:.2}); ratio ours/peer p50 {:.2}, p99 {:.2}",
        p50 / pp50.max(f64::MIN_POSITIVE),
        p99 / pp99.max(f64::MIN_POSITIVE),
    );
    Ok(rec.finish(
        target,
        p99,
        p50 <= 1.0,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
