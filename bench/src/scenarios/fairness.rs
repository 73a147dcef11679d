//! `fairness`: how the IoT provider's 20 requests a second are shared. Three
//! `onboard-worker` processes, the sandbox enforcing 20/s for IoT (violations counted), a
//! 20,000-row bulk backfill (a batch), a second 5,000-row backfill started 10 s later, and
//! live create-customer jobs at 2/s for 60 s. The sandbox records when each customer was
//! created, which times every job from its enqueue to its provider request.
//!
//! It reports the live jobs' latency (target p99 <= 500 ms), the two backfills' rates while
//! both run (target within 10 % of each other), the share of the limit used (target >= 97 %)
//! and violations (target 0). A second run with live load alone above the limit (30/s)
//! beside a backfill shows bulk keeping its minimum share (10 %, target within 2 points).

use crate::harness::{self, Sandbox};
use crate::report::{round, Record, RecordBuilder, Target};
use anyhow::Context;
use onboard_shared::jobs::{CreateCustomerJob, Job};
use onboard_shared::queue::{EnqueueOptions, JobStore, Lane};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LIMIT: f64 = 20.0;
const WORKERS: usize = 3;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn customer(id: String, i: usize) -> Job {
    Job::CreateCustomer(CreateCustomerJob {
        customer_id: id,
        country_code: "86".into(),
        phone_number: format!("139{:08}", i % 100_000_000),
    })
}

/// Enqueues a backfill of `rows` customers `<tag>_<i>` as a batch of its own; returns the
/// batch id.
async fn backfill(store: &JobStore, tag: &str, rows: usize) -> anyhow::Result<String> {
    let batch = store.create_batch(tag).await?;
    let jobs: Vec<(Job, EnqueueOptions)> = (0..rows)
        .map(|i| {
            let opts = EnqueueOptions {
                lane: Some(Lane::Bulk),
                source: Some(batch.clone()),
                ..Default::default()
            };
            (customer(format!("{tag}_{i}"), i), opts)
        })
        .collect();
    harness::enqueue_chunks(store, &jobs, 5_000).await?;
    Ok(batch)
}

/// Live create-customer jobs `<tag>_<i>` at `per_sec` for `run_for`; returns each one's
/// enqueue time (Unix ms) by customer id.
async fn live_load(
    store: JobStore,
    tag: &'static str,
    per_sec: f64,
    run_for: Duration,
) -> anyhow::Result<HashMap<String, u64>> {
    let mut sent = HashMap::new();
    let every = Duration::from_secs_f64(1.0 / per_sec);
    let mut tick = tokio::time::interval(every);
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < run_for {
        tick.tick().await;
        let id = format!("{tag}_{i}");
        let opts = EnqueueOptions {
            lane: Some(Lane::Live),
            source: Some("app".into()),
            ..Default::default()
        };
        let at = unix_ms();
        store.enqueue(&customer(id.clone(), i), &opts).await?;
        sent.insert(id, at);
        i += 1;
    }
    Ok(sent)
}

/// When each customer was created at the sandbox (Unix ms).
async fn creates_of(sandbox: &Sandbox) -> anyhow::Result<HashMap<String, u64>> {
    let v: serde_json::Value = reqwest::get(format!("{}/_sandbox/created", sandbox.url()))
        .await?
        .json()
        .await
        .context("GET /_sandbox/created")?;
    Ok(v["customers"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, t)| t.as_u64().map(|t| (k.clone(), t)))
                .collect()
        })
        .unwrap_or_default())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Creates of customers whose id starts with `tag` within `[from, to)` (Unix ms).
fn count_in(created: &HashMap<String, u64>, tag: &str, from: u64, to: u64) -> usize {
    created
        .iter()
        .filter(|(k, t)| k.starts_with(tag) && **t >= from && **t < to)
        .count()
}

/// A fresh stack: redis-server, sandbox enforcing its limits, three workers.
async fn stack() -> anyhow::Result<(
    harness::RedisServer,
    Sandbox,
    Vec<harness::Process>,
    JobStore,
)> {
    let redis = harness::start_redis().await?;
    let sandbox = Sandbox::start(true).await?;
    let store = harness::store(&redis).await?;
    let mut env = harness::worker_env(&redis, Some(sandbox.url()));
    env.push(("ONBOARD_LIMITS__IOT".into(), LIMIT.to_string()));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(
            harness::start_worker(&env)
                .await
                .context("start onboard-worker")?,
        );
    }
    Ok((redis, sandbox, workers, store))
}

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let (run_for, second_after, rows_a, rows_b) = if quick {
        (Duration::from_secs(20), Duration::from_secs(5), 2_000, 500)
    } else {
        (
            Duration::from_secs(60),
            Duration::from_secs(10),
            20_000,
            5_000,
        )
    };
    let mut rec = RecordBuilder::new("fairness", quick);

    // Run 1: two backfills and a trickle of live signups.
    let (_redis, sandbox, workers, store) = stack().await?;
    backfill(&store, "fa", rows_a).await?;
    let t0 = unix_ms();
    let live = tokio::spawn(live_load(store.clone(), "fl", 2.0, run_for));
    tokio::time::sleep(second_after).await;
    let b_start = unix_ms();
    backfill(&store, "fb", rows_b).await?;
    let sent = live.await.context("live load task")??;
    let end = unix_ms();
    // The last live jobs reach the provider within their wait: give them a few seconds.
    let mut created = creates_of(&sandbox).await?;
    let settle = Instant::now();
    while sent.keys().any(|id| !created.contains_key(id))
        && settle.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        created = creates_of(&sandbox).await?;
    }
    let stats = sandbox.stats().await?;
    drop(workers);

    let mut latencies: Vec<u64> = sent
        .iter()
        .filter_map(|(id, at)| created.get(id).map(|c| c.saturating_sub(*at)))
        .collect();
    latencies.sort_unstable();
    let live_missing = sent.len() - latencies.len();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    // Both backfills run from a few seconds after the second starts (its first jobs join
    // the ring) until the end.
    let both_from = b_start + 3_000;
    let secs = (end.saturating_sub(both_from)) as f64 / 1000.0;
    let rate_a = count_in(&created, "fa_", both_from, end) as f64 / secs;
    let rate_b = count_in(&created, "fb_", both_from, end) as f64 / secs;
    let balance = rate_a.min(rate_b) / rate_a.max(rate_b).max(1e-9);
    let used_from = t0 + 2_000;
    let used_secs = (end.saturating_sub(used_from)) as f64 / 1000.0;
    let used = count_in(&created, "f", used_from, end) as f64 / used_secs / LIMIT;
    let action = &stats["actions"]["ServiceCreateCustomer"];
    let violations = action["rate_limit_violations"].as_u64().unwrap_or(u64::MAX);

    // Run 2: live load alone above the limit, beside a backfill.
    let (_redis2, sandbox2, workers2, store2) = stack().await?;
    backfill(&store2, "sa", rows_a).await?;
    let t1 = unix_ms();
    let live_for = if quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    live_load(store2.clone(), "sl", 30.0, live_for).await?;
    let t2 = unix_ms();
    let created2 = creates_of(&sandbox2).await?;
    let stats2 = sandbox2.stats().await?;
    drop(workers2);
    let from = t1 + 2_000;
    let bulk = count_in(&created2, "sa_", from, t2) as f64;
    let all = count_in(&created2, "s", from, t2) as f64;
    let bulk_share = bulk / all.max(1.0);
    let violations2 = stats2["actions"]["ServiceCreateCustomer"]["rate_limit_violations"]
        .as_u64()
        .unwrap_or(u64::MAX);

    rec.figure("workers", WORKERS as u64)
        .figure("iot_limit_per_sec", LIMIT)
        .figure("backfill_rows", format!("{rows_a} + {rows_b}"))
        .figure("live_jobs", sent.len() as u64)
        .figure("live_not_created_by_the_end", live_missing as u64)
        .figure("live_latency_p50_ms", p50)
        .figure("live_latency_p99_ms", p99)
        .figure("backfill_a_per_sec_while_both_run", round(rate_a, 2))
        .figure("backfill_b_per_sec_while_both_run", round(rate_b, 2))
        .figure("backfill_balance", round(balance, 3))
        .figure("share_of_limit_used", round(used, 4))
        .figure("violations", violations)
        .figure("run2_live_per_sec", 30.0)
        .figure("run2_bulk_share", round(bulk_share, 4))
        .figure("run2_violations", violations2)
        .note("latency: the sandbox's first create of the customer minus the live job's enqueue (same machine, same clock)")
        .note("rates while both run: creates from 3 s after the second backfill started until the end; share used: all creates from 2 s after the start / seconds / 20")
        .note("run 2: live create-customer at 30/s (above the 20/s limit) for the run beside a backfill; bulk share = backfill creates / all creates from 2 s after the start");
    let met = p99 <= 500
        && live_missing == 0
        && balance >= 0.9
        && used >= 0.97
        && violations == 0
        && violations2 == 0
        && (bulk_share - 0.10).abs() <= 0.02;
    let target = Target::new(
        "live_latency_p99_ms (and balance >= 0.9, share used >= 0.97, 0 violations, run-2 bulk share 10 % +- 2)",
        "<=",
        500.0,
        "a live job reaches the provider within 500 ms (p99) during backfills at the limit; two backfills progress within 10 % of each other; >= 97 % of the limit used; bulk keeps its minimum share",
    );
    let summary = format!(
        "IoT 20/s, {WORKERS} workers: live p50 {p50} ms, p99 {p99} ms ({} live jobs); backfills {rate_a:.1}/s and {rate_b:.1}/s while both run (balance {balance:.2}); {:.1} % of the limit used; {violations} violations; live at 30/s leaves bulk {:.1} % ({violations2} violations)",
        sent.len(),
        used * 100.0,
        bulk_share * 100.0
    );
    Ok(rec.finish(
        target,
        p99 as f64,
        met,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
