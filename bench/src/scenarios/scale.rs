//! `scale`: how the drain grows with worker processes, on one Redis and on a Redis Cluster,
//! and what `durability = "replicated"` costs.
//!
//! For each topology (one redis-server; a private 3-master, 3-replica cluster; neither
//! writing to disk) and each
//! count of `onboard-worker` processes (1, 2, 4): N jobs pre-enqueued, half create-customer
//! (IoT) and half register-user (POLYV), so that on the cluster two masters serve them;
//! every worker with stubbed providers (no HTTP, no provider limit), concurrency 50 per
//! kind. Timed from the first worker's start to all N succeeded. The CPU time each side
//! used (Redis: every node; workers: every process) says where the limit sits. Then the
//! cluster again with `durability = "replicated"` (a WAIT for one replica after every
//! enqueue and ack), for the library enqueue and a 2-worker drain.

use crate::harness::{self, proc_cpu, rate, RedisServer};
use crate::report::{fmt_num, Record, RecordBuilder, Target};
use anyhow::Context;
use onboard_harness::{Persistence, RedisCluster, SingleServer};
use onboard_shared::config::Durability;
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, JobStore};
use std::time::{Duration, Instant};

/// The two kinds drained: one per provider, so two cluster masters serve them.
const KINDS: [JobKind; 2] = [JobKind::CreateCustomer, JobKind::RegisterUser];

/// One measured drain.
struct Drain {
    jobs_per_sec: f64,
    /// Redis CPU time over wall time (1.0 = one core busy).
    redis_cores: f64,
    /// The workers' CPU time over wall time.
    worker_cores: f64,
}

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let n: usize = if quick { 20_000 } else { 200_000 };
    let jobs: Vec<(Job, EnqueueOptions)> = (0..n)
        .map(|i| match i % 2 {
            0 => Job::CreateCustomer(super::customer_payload(i)),
            _ => Job::RegisterUser(super::user_payload(i)),
        })
        .map(|job| (job, EnqueueOptions::default()))
        .collect();
    let mut rec = RecordBuilder::new("scale", quick);
    rec.figure("jobs", n as u64);
    rec.figure(
        "cores",
        std::thread::available_parallelism().map_or(1, |c| c.get()) as u64,
    );
    let mut lines = Vec::new();
    let mut best = 0.0_f64;

    for topology in ["single", "cluster"] {
        let redis = tokio::task::spawn_blocking(move || match topology {
            "single" => RedisServer::Single(SingleServer::start_with(false)),
            // No persistence, as the single server: the figures compare topologies.
            _ => RedisServer::Cluster(RedisCluster::start_with(Persistence::None)),
        })
        .await
        .context("start redis")?;
        let store = harness::store(&redis).await?;
        for workers in [1, 2, 4] {
            let d = drain(&redis, &store, &jobs, workers, Durability::Async).await?;
            best = best.max(d.jobs_per_sec);
            record(&mut rec, &mut lines, topology, workers, "", &d);
        }
        if topology == "cluster" {
            let (async_rate, replicated_rate) = enqueue_rates(&redis, &jobs).await?;
            rec.figure("cluster_enqueue_async_jobs_per_sec", async_rate.round());
            rec.figure(
                "cluster_enqueue_replicated_jobs_per_sec",
                replicated_rate.round(),
            );
            lines.push(format!(
                "cluster enqueue_many(1k) async {} jobs/s, replicated {} jobs/s",
                fmt_num(async_rate),
                fmt_num(replicated_rate)
            ));
            let store = replicated_store(&redis).await?;
            let d = drain(&redis, &store, &jobs, 2, Durability::Replicated).await?;
            record(&mut rec, &mut lines, topology, 2, "_replicated", &d);
        }
    }
    rec.note("jobs/s timed from the first worker's start (backlog enqueued) to every job succeeded (queue_stats every 50 ms); the workers start one after another, within about 0.1 s each");
    rec.note("redis_cores / worker_cores: CPU time (user + system, /proc/<pid>/stat) over the drain's wall time; on a machine with `cores` cores, the side near its share of them is the limit");
    let target = Target::new(
        "best_jobs_per_sec",
        ">=",
        10_000.0,
        "the best drain of the table keeps up with 10,000 jobs/s (a figure to watch; the README's table is the result)",
    );
    Ok(rec.finish(
        target,
        best,
        true,
        lines.join("; "),
        wall.elapsed().as_secs_f64(),
    ))
}

/// Adds one drain's figures and its line of the summary.
fn record(
    rec: &mut RecordBuilder,
    lines: &mut Vec<String>,
    topology: &str,
    workers: usize,
    suffix: &str,
    d: &Drain,
) {
    let key = format!("{topology}_{workers}w{suffix}");
    rec.figure(&format!("{key}_jobs_per_sec"), d.jobs_per_sec.round());
    rec.figure(&format!("{key}_redis_cores"), round2(d.redis_cores));
    rec.figure(&format!("{key}_worker_cores"), round2(d.worker_cores));
    lines.push(format!(
        "{topology}{suffix} {workers} worker(s) {} jobs/s (redis {:.2} cores, workers {:.2})",
        fmt_num(d.jobs_per_sec),
        d.redis_cores,
        d.worker_cores
    ));
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Empties Redis, enqueues `jobs`, drains them with `workers` stub worker processes.
async fn drain(
    redis: &RedisServer,
    store: &JobStore,
    jobs: &[(Job, EnqueueOptions)],
    workers: usize,
    durability: Durability,
) -> anyhow::Result<Drain> {
    harness::flush(redis).await?;
    harness::enqueue_chunks(store, jobs, 10_000).await?;
    let mut env = harness::stub_worker_env(redis, &KINDS, 50);
    if durability == Durability::Replicated {
        env.push(("ONBOARD_DURABILITY".into(), "replicated".into()));
    }
    let redis_pids = redis.pids();
    let redis_before: Duration = redis_pids.iter().map(|p| proc_cpu(*p)).sum();
    let start = Instant::now();
    let mut running = Vec::new();
    for _ in 0..workers {
        running.push(harness::start_worker(&env).await?);
    }
    let timeout = Duration::from_secs(120 + jobs.len() as u64 / 500);
    for kind in KINDS {
        let want = jobs.iter().filter(|(j, _)| j.kind() == kind).count() as u64;
        harness::wait_succeeded(store, kind, want, timeout)
            .await
            .with_context(|| format!("{workers} worker(s) draining {kind}"))?;
    }
    let took = start.elapsed();
    let worker_cpu: Duration = running.iter().map(|w| proc_cpu(w.pid())).sum();
    let redis_cpu = redis_pids.iter().map(|p| proc_cpu(*p)).sum::<Duration>() - redis_before;
    drop(running);
    Ok(Drain {
        jobs_per_sec: rate(jobs.len() as u64, took),
        redis_cores: redis_cpu.as_secs_f64() / took.as_secs_f64(),
        worker_cores: worker_cpu.as_secs_f64() / took.as_secs_f64(),
    })
}

/// Library `enqueue_many` in chunks of 1,000 on the cluster, async then replicated.
async fn enqueue_rates(
    redis: &RedisServer,
    jobs: &[(Job, EnqueueOptions)],
) -> anyhow::Result<(f64, f64)> {
    harness::flush(redis).await?;
    let store = harness::store(redis).await?;
    let took = harness::enqueue_chunks(&store, jobs, 1_000).await?;
    let async_rate = rate(jobs.len() as u64, took);
    harness::flush(redis).await?;
    let store = replicated_store(redis).await?;
    let took = harness::enqueue_chunks(&store, jobs, 1_000).await?;
    Ok((async_rate, rate(jobs.len() as u64, took)))
}

async fn replicated_store(redis: &RedisServer) -> anyhow::Result<JobStore> {
    let mut cfg = harness::config(redis);
    cfg.durability = Durability::Replicated;
    JobStore::connect(&cfg)
        .await
        .context("connect the job store (replicated)")
}
