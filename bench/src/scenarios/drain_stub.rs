//! `drain-stub`: how fast a backlog drains through a no-op handler.
//!
//! Ours: N create-customer jobs pre-enqueued, then an in-process apalis worker on our
//! `RedisBackend` (leases and events stream on, as in production), concurrency 50, timed
//! from worker start (enqueue done) until `queue_stats` counts all N succeeded (polled every
//! 50 ms). Also the real `onboard-worker` process with `ONBOARD_STUB_PROVIDERS=true`
//! (every job answered in-process, no HTTP), same N, concurrency 50, claiming up to 50
//! more ahead of its slots (`queue.prefetch`), each time followed by BullMQ
//! (`bench/bullmq/drain.mjs`, see `crate::bullmq`), the peer of issue 19's target: twice at
//! full size, and the round least in our favour is judged. The other peer: apalis-redis with
//! a no-op handler, concurrency 50, with its defaults and with locking (and acks) off.

use crate::bullmq;
use crate::harness::{self, rate};
use crate::peer::{self, Variant};
use crate::probe::Probe;
use crate::report::{fmt_num, times, Record, RecordBuilder, Target};
use anyhow::Context;
use onboard_shared::jobs::{CreateCustomerJob, Job, JobKind};
use onboard_shared::queue::EnqueueOptions;
use std::time::{Duration, Instant};

/// Where BullMQ cannot run (no Node.js, no npm registry), its drain is estimated as this
/// share of the peer's drain without locking in the same run: 23,500 against 25,100 jobs/s
/// on 2026-12-02 (issue 19), 27,750 against 30,640 on 2026-12-03 (BullMQ 6.7.6 run by hand
/// beside this scenario). On 2026-12-04 it was 15,300 against 14,200: the share moves with
/// the sitting, which is why the bench now measures BullMQ itself.
const BULLMQ_PER_PEER_LOCK_OFF: f64 = 0.92;

/// Jobs `onboard-worker` claims ahead of its 50 slots (`queue.prefetch`).
const PREFETCH: usize = 50;

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let n: usize = if quick { 10_000 } else { 200_000 };
    let timeout = Duration::from_secs(60 + n as u64 / 1_000);
    let payloads: Vec<CreateCustomerJob> = (0..n).map(super::customer_payload).collect();
    let jobs: Vec<(Job, EnqueueOptions)> = payloads
        .iter()
        .map(|p| (Job::CreateCustomer(p.clone()), EnqueueOptions::default()))
        .collect();
    let redis = harness::start_redis().await?;
    let store = harness::store(&redis).await?;
    let mut rec = RecordBuilder::new("drain-stub", quick);
    rec.figure("jobs", n as u64);
    rec.figure("concurrency", 50);

    // Ours, in-process.
    harness::enqueue_chunks(&store, &jobs, 10_000).await?;
    let running = crate::ours::start_worker(&store, JobKind::CreateCustomer, 50, Probe::new(None));
    let took = harness::wait_succeeded(&store, JobKind::CreateCustomer, n as u64, timeout).await;
    running.stop().await;
    let ours = rate(n as u64, took?);
    rec.figure("in_process_jobs_per_sec", ours.round());

    // Ours, the worker process with stubbed providers, each time followed at once by
    // BullMQ on the same server and payloads: this machine's pace moves within a run, so
    // the two are measured side by side, twice at full size, and the round least in our
    // favour is the one judged.
    let rounds = if quick { 1 } else { 2 };
    let mut paired: Vec<(f64, f64)> = Vec::new();
    let mut bullmq_missing = None;
    for round in 1..=rounds {
        let (process, spawn_to_ready) =
            worker_process_drain(&redis, &store, &jobs, timeout).await?;
        rec.figure(
            &format!("worker_process_round_{round}_jobs_per_sec"),
            process.round(),
        );
        rec.figure(
            "worker_process_spawn_to_ready_secs",
            spawn_to_ready.as_secs_f64(),
        );
        harness::flush(&redis).await?;
        match bullmq::drain(&redis.url(), n, timeout).await {
            Ok(drained) => {
                rec.peer(
                    &format!("bullmq_round_{round}_jobs_per_sec"),
                    drained.jobs_per_sec.round(),
                );
                if round == 1 {
                    rec.note(format!(
                        "BullMQ {}: addBulk of the same payloads (10,000 a call, untimed), a Worker with a no-op processor at concurrency 50, completed jobs kept; timed from the first job processed to the last `completed` event (bench/bullmq/drain.mjs), run right after onboard-worker in each round",
                        drained.bullmq
                    ));
                }
                paired.push((process, drained.jobs_per_sec));
            }
            Err(e) => {
                bullmq_missing = Some((process, e));
                break;
            }
        }
        harness::flush(&redis).await?;
    }
    drop(jobs);

    // The peer.
    let mut peer_rates = Vec::new();
    for variant in [Variant::Defaults, Variant::NoLock, Variant::NoLockNoAck] {
        harness::flush(&redis).await?;
        peer::push_bulk(&redis, "bench-drain", &payloads, 10_000).await?;
        let peer_timeout = timeout.min(Duration::from_secs(120));
        let (r, finished) =
            peer::drain(&redis, "bench-drain", variant, n as u64, peer_timeout).await?;
        rec.peer(&format!("{}_jobs_per_sec", variant.label()), r.round());
        if finished < n as u64 {
            rec.peer(
                &format!(
                    "{}_finished_within_{}s",
                    variant.label(),
                    peer_timeout.as_secs()
                ),
                finished,
            );
            rec.note(format!(
                "peer {}: only {finished} of {n} tasks finished within {} s; its figure is the rate until then",
                variant.label(),
                peer_timeout.as_secs()
            ));
        }
        peer_rates.push((variant, r));
    }
    let peer_default = peer_rates[0].1;
    let peer_nolock = peer_rates[1].1;
    let peer_noack = peer_rates[2].1;
    rec.ratio("in_process_vs_defaults", ours, peer_default);
    rec.ratio("in_process_vs_lock_off", ours, peer_nolock);
    rec.ratio("in_process_vs_lock_off_ack_off", ours, peer_noack);
    rec.figure("worker_process_prefetch", PREFETCH as u64);
    rec.note("ours: timed from worker start (backlog already enqueued) to succeeded_total == N via queue_stats every 50 ms; the process figure is timed from its ready line");
    rec.note("peer: apalis-redis 1.0.0 cannot drain a pre-pushed backlog of more than about 8,000 tasks by itself: push_tasks puts every task in the scheduled set and fetch_next.lua promotes all due ones with one Lua unpack (\"too many results to unpack\"), which kills the worker on its first fetch; the bench promotes the backlog onto the active list (5,000 per round trip, untimed) before starting the peer worker");
    rec.note(format!(
        "peer: RedisStorage, concurrency 50, parallelize(tokio::spawn), poll_with_interval({} ms); timed from worker start to SCARD done == N (handler count when acks are off)",
        peer::POLL.as_millis()
    ));

    // The round least in our favour, or the estimate where BullMQ could not run.
    let (process, bullmq_rate, how) = match bullmq_missing {
        Some((process, e)) => {
            let estimate = BULLMQ_PER_PEER_LOCK_OFF * peer_nolock;
            rec.figure("bullmq_estimated_jobs_per_sec", estimate.round());
            rec.note(format!(
                "BullMQ not run ({e:#}): estimated as {BULLMQ_PER_PEER_LOCK_OFF} x the peer without locking"
            ));
            let how = format!("estimated at {BULLMQ_PER_PEER_LOCK_OFF}x the peer without locking");
            (process, estimate, how)
        }
        None => {
            let (process, bullmq_rate) = paired
                .iter()
                .copied()
                .min_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)))
                .context("no round ran")?;
            rec.peer("bullmq_jobs_per_sec", bullmq_rate.round());
            let how = format!(
                "measured in this run ({} round(s), the one least in our favour)",
                paired.len()
            );
            (process, bullmq_rate, how)
        }
    };
    rec.figure("worker_process_stub_jobs_per_sec", process.round());
    rec.ratio("worker_process_vs_bullmq", process, bullmq_rate);
    rec.ratio("worker_process_vs_defaults", process, peer_default);
    rec.ratio("worker_process_vs_lock_off", process, peer_nolock);
    let target = Target::new(
        "worker_process_stub_jobs_per_sec",
        ">=",
        (2.0 * bullmq_rate).round(),
        "drain through onboard-worker >= 2x BullMQ in the same run, with leases, events and acks on",
    );
    let summary = format!(
        "{n} jobs, concurrency 50: ours in-process {} jobs/s, onboard-worker (stub providers) {} jobs/s; apalis-redis defaults {} jobs/s, lock off {} jobs/s, lock+ack off {} jobs/s; ratio onboard-worker/peer defaults {:.2}x, /lock off {:.2}x; BullMQ {how}: {} jobs/s, onboard-worker {:.2}x of it",
        fmt_num(ours),
        fmt_num(process),
        fmt_num(peer_default),
        fmt_num(peer_nolock),
        fmt_num(peer_noack),
        times(process, peer_default),
        times(process, peer_nolock),
        fmt_num(bullmq_rate),
        times(process, bullmq_rate),
    );
    Ok(rec.finish(target, process, true, summary, wall.elapsed().as_secs_f64()))
}

/// Drains `jobs` through an `onboard-worker` process with stubbed providers, concurrency 50
/// and `PREFETCH`: its rate from its ready line to the last success, and how long it took
/// from spawn to ready.
async fn worker_process_drain(
    redis: &harness::RedisServer,
    store: &onboard_shared::queue::JobStore,
    jobs: &[(Job, EnqueueOptions)],
    timeout: Duration,
) -> anyhow::Result<(f64, Duration)> {
    harness::flush(redis).await?;
    harness::enqueue_chunks(store, jobs, 10_000).await?;
    let mut env = harness::stub_worker_env(redis, &[JobKind::CreateCustomer], 50);
    // Claims overlap the running jobs: up to PREFETCH more wait in the worker, their leases
    // renewed (`queue.prefetch`; the stub providers have no rate limit, where it applies).
    env.push(("ONBOARD_QUEUE__PREFETCH".into(), PREFETCH.to_string()));
    let start = Instant::now();
    let worker = harness::start_worker(&env)
        .await
        .context("start onboard-worker (stub providers)")?;
    let took = harness::wait_succeeded(store, JobKind::CreateCustomer, jobs.len() as u64, timeout)
        .await
        .with_context(|| format!("onboard-worker log:\n{}", worker.log_tail()))?;
    let spawn_to_ready = start.elapsed() - took;
    drop(worker);
    Ok((rate(jobs.len() as u64, took), spawn_to_ready))
}
