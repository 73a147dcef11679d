//! `drain-sandbox`: create-customer jobs through the real `onboard-worker` process over HTTP
//! to `onboard-sandbox --no-rate-limits` (concurrency 200, the IoT limit lifted), timed from
//! the worker's ready line (backlog already enqueued) until all N succeeded.

use crate::harness::{self, rate, Sandbox};
use crate::report::{fmt_num, Record, RecordBuilder, Target};
use anyhow::Context;
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::EnqueueOptions;
use std::time::{Duration, Instant};

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let n: usize = if quick { 2_000 } else { 50_000 };
    let concurrency = 200;
    let redis = harness::start_redis().await?;
    let sandbox = Sandbox::start(false).await?;
    let store = harness::store(&redis).await?;
    let jobs: Vec<(Job, EnqueueOptions)> = (0..n)
        .map(|i| {
            let job = Job::CreateCustomer(super::customer_payload(i));
            (job, EnqueueOptions::default())
        })
        .collect();
    harness::enqueue_chunks(&store, &jobs, 10_000).await?;

    let mut env = harness::worker_env(&redis, Some(sandbox.url()));
    env.extend([
        // 0 turns the limit off. A huge limit does not: the limiter spaces requests by
        // whole milliseconds (`ceil(1000 / rate * 1.04)`), so any limit above ~960/s
        // is a cap of 1,000/s.
        ("ONBOARD_LIMITS__IOT".to_string(), "0".to_string()),
        (
            "ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER".to_string(),
            concurrency.to_string(),
        ),
    ]);
    let worker = harness::start_worker(&env)
        .await
        .context("start onboard-worker")?;
    let timeout = Duration::from_secs(60 + n as u64 / 200);
    let took = harness::wait_succeeded(&store, JobKind::CreateCustomer, n as u64, timeout)
        .await
        .with_context(|| {
            format!(
                "onboard-worker log:\n{}\nsandbox log:\n{}",
                worker.log_tail(),
                sandbox.proc().log_tail()
            )
        })?;
    let jobs_per_sec = rate(n as u64, took);
    let stats = sandbox.stats().await?;
    let creates = &stats["actions"]["ServiceCreateCustomer"];

    let mut rec = RecordBuilder::new("drain-sandbox", quick);
    rec.figure("jobs", n as u64)
        .figure("concurrency", concurrency)
        .figure("jobs_per_sec", jobs_per_sec.round())
        .figure("secs", took.as_secs_f64())
        .figure("sandbox_create_customer_requests", creates["requests"].clone())
        .figure("sandbox_create_customer_successes", creates["successes"].clone())
        .note("ONBOARD_LIMITS__IOT=0 (off): with ONBOARD_LIMITS__IOT=1000000 the Redis GCRA gate spaces requests by ceil(1000/rate*1.04) = 1 ms, i.e. caps the worker at 1,000 jobs/s (measured 992 jobs/s)")
        .note("one onboard-worker process (ONBOARD_PROFILE=sandbox, ONBOARD_LOG=warn), HTTP to onboard-sandbox --no-rate-limits on loopback, all on the same machine; no peer run (apalis-redis has no provider clients)");
    let target = Target::new(
        "jobs_per_sec",
        ">=",
        5_000.0,
        "through HTTP to the sandbox >= 5,000 jobs/s",
    );
    let summary = format!(
        "{n} create-customer jobs through onboard-worker (concurrency {concurrency}) to the sandbox: {} jobs/s ({:.1} s)",
        fmt_num(jobs_per_sec),
        took.as_secs_f64()
    );
    Ok(rec.finish(
        target,
        jobs_per_sec,
        true,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
