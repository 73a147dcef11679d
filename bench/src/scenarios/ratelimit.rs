//! `ratelimit`: three `onboard-worker` processes sharing one Redis and one global
//! CreateAccount limit of 5/s, against the sandbox WITH its rate limiter on (5/s, violations
//! counted). 600 create-account jobs are enqueued (each one's first request is a
//! CreateAccount that texts a code, after which the job waits for the code), so every job
//! is one request; after the run time the sandbox's `max_per_second` and violations tell
//! whether the limit held, and `requests / seconds / 5` how busy it was kept.

use crate::harness::{self, Sandbox};
use crate::report::{round, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::EnqueueOptions;
use onboard_tests::fixtures::account;
use std::time::{Duration, Instant};

const LIMIT: f64 = 5.0;
const WORKERS: usize = 3;
const JOBS: usize = 600;

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let run_for = Duration::from_secs(if quick { 10 } else { 60 });
    let redis = harness::start_redis().await?;
    let sandbox = Sandbox::start(true).await?;
    let store = harness::store(&redis).await?;

    for job in (0..JOBS).map(account) {
        onboard_shared::validation::Validate::validate(&job)
            .map_err(|e| anyhow::anyhow!("bench job is invalid: {e}"))?;
    }

    let mut env = harness::worker_env(&redis, Some(sandbox.url()));
    env.push(("ONBOARD_LIMITS__CREATE_ACCOUNT".into(), LIMIT.to_string()));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(
            harness::start_worker(&env)
                .await
                .context("start onboard-worker")?,
        );
    }
    let jobs: Vec<(Job, EnqueueOptions)> = (0..JOBS)
        .map(|i| (account(i), EnqueueOptions::default()))
        .collect();
    let start = Instant::now();
    store.enqueue_many(&jobs).await?;
    tokio::time::sleep(run_for.saturating_sub(start.elapsed())).await;
    let stats = sandbox.stats().await?;
    let secs = start.elapsed().as_secs_f64();
    let counts = harness::counts(&store, JobKind::CreateAccount).await?;
    drop(workers);

    let ca = &stats["actions"]["CreateAccount"];
    let num = |k: &str| ca[k].as_u64();
    let (Some(requests), Some(violations), Some(max_per_second)) = (
        num("requests"),
        num("rate_limit_violations"),
        num("max_per_second"),
    ) else {
        bail!("the sandbox stats have no CreateAccount counters: {stats}");
    };
    let achieved = requests as f64 / secs / LIMIT;

    let mut rec = RecordBuilder::new("ratelimit", quick);
    rec.figure("workers", WORKERS as u64)
        .figure("limit_per_sec", LIMIT)
        .figure("jobs_enqueued", JOBS as u64)
        .figure("run_secs", round(secs, 2))
        .figure("create_account_requests", requests)
        .figure("create_account_successes", ca["successes"].clone())
        .figure("rate_limit_violations", violations)
        .figure("max_per_second", max_per_second)
        .figure("achieved_share_of_limit", round(achieved, 4))
        .figure("jobs_awaiting_code", counts.awaiting_code)
        .note("achieved = sandbox CreateAccount requests / run seconds / 5 (run timed from the enqueue); max_per_second is the sandbox's busiest wall-clock second");
    let target = Target::new(
        "achieved_share_of_limit (and max_per_second <= 5, no violations)",
        ">=",
        0.95,
        "3 workers at 5/s never exceed 5 requests in any second and keep >= 95 % of the allowed rate busy",
    );
    let limit_held = max_per_second as f64 <= LIMIT && violations == 0;
    let summary = format!(
        "{WORKERS} workers, limit {LIMIT}/s, {secs:.1} s: {requests} CreateAccount requests, max {max_per_second}/s, {violations} violations, achieved {:.1} % of the limit",
        achieved * 100.0
    );
    Ok(rec.finish(
        target,
        achieved,
        limit_held,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
