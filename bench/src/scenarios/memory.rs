//! `memory`: resident memory of one `onboard-worker` with 1,000 register-user jobs in
//! flight (concurrency 1000, the sandbox answering after 2 s). VmRSS is sampled every
//! 100 ms from /proc while they run; VmHWM is read at the end.

use crate::harness::{self, proc_status_kib, Sandbox};
use crate::report::{round, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::EnqueueOptions;
use onboard_tests::fixtures::user;
use std::time::{Duration, Instant};

const JOBS: usize = 1_000;
const LATENCY_MS: u64 = 2_000;

/// Runs the scenario (same size with `--quick`: the target is about 1,000 in flight).
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let redis = harness::start_redis().await?;
    let sandbox = Sandbox::start(false).await?;
    sandbox
        .set_faults(serde_json::json!({ "latency_ms": LATENCY_MS }))
        .await?;
    let store = harness::store(&redis).await?;
    let mut env = harness::worker_env(&redis, Some(sandbox.url()));
    env.extend([
        (
            "ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER".to_string(),
            JOBS.to_string(),
        ),
        ("ONBOARD_LIMITS__POLYV".to_string(), "0".to_string()),
    ]);
    let worker = harness::start_worker(&env)
        .await
        .context("start onboard-worker")?;
    let pid = worker.pid();
    let idle_kib = proc_status_kib(pid, "VmRSS:").unwrap_or(0);

    let jobs: Vec<(Job, EnqueueOptions)> = (0..JOBS)
        .map(|i| (user(i), EnqueueOptions::default()))
        .collect();
    let start = Instant::now();
    store.enqueue_many(&jobs).await?;
    let mut peak_kib = idle_kib;
    let mut samples = 0u64;
    let mut max_running = 0u64;
    let deadline = start + Duration::from_secs(60);
    loop {
        match proc_status_kib(pid, "VmRSS:") {
            Some(kib) => peak_kib = peak_kib.max(kib),
            None => bail!("onboard-worker (pid {pid}) is gone:\n{}", worker.log_tail()),
        }
        samples += 1;
        let stats = store.queue_stats(JobKind::RegisterUser).await?;
        max_running = max_running.max(stats.running);
        if stats.dead > 0 {
            bail!(
                "{} register-user jobs were dead-lettered:\n{}",
                stats.dead,
                worker.log_tail()
            );
        }
        if stats.succeeded_total >= JOBS as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {JOBS} jobs succeeded within 60 s:\n{}",
                stats.succeeded_total,
                worker.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = start.elapsed();
    let hwm_kib = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
    drop(worker);

    let mib = |kib: u64| round(kib as f64 / 1024.0, 1);
    let peak = mib(peak_kib.max(hwm_kib));
    let mut rec = RecordBuilder::new("memory", quick);
    rec.figure("jobs", JOBS as u64)
        .figure("concurrency", JOBS as u64)
        .figure("sandbox_latency_ms", LATENCY_MS)
        .figure("idle_rss_mib", mib(idle_kib))
        .figure("peak_sampled_rss_mib", mib(peak_kib))
        .figure("vm_hwm_mib", mib(hwm_kib))
        .figure("max_running_seen", max_running)
        .figure("rss_samples", samples)
        .figure("secs", round(took.as_secs_f64(), 2))
        .note("peak = max(sampled VmRSS every 100 ms, VmHWM at the end); max_running_seen is the leased count polled alongside");
    let target = Target::new(
        "peak_rss_mib",
        "<",
        64.0,
        "worker memory under 64 MiB resident with 1,000 jobs in flight",
    );
    let summary = format!(
        "{JOBS} register-user jobs in flight (sandbox latency {LATENCY_MS} ms, up to {max_running} leased at once): onboard-worker RSS idle {} MiB, peak sampled {} MiB, VmHWM {} MiB",
        mib(idle_kib),
        mib(peak_kib),
        mib(hwm_kib)
    );
    Ok(rec.finish(target, peak, true, summary, wall.elapsed().as_secs_f64()))
}
