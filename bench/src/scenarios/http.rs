//! `http`: the HTTP API (`onboard-producer serve`) side by side with the library path.
//!
//! 1. Single-job `POST /v1/jobs/create-customer` at a fixed 1,000 requests/s, open loop:
//!    this scenario's own load generator (tokio + reqwest; no packaged HTTP load generator
//!    can be installed here) schedules request `i` at `start + i/rate` whatever the earlier
//!    ones are doing, and measures each latency from its scheduled time, so a stall shows
//!    in the tail instead of slowing the offered load. The library path
//!    (`JobStore::enqueue`, in process) runs the same schedule.
//! 2. A batch upload: one `POST /v1/batches` of NDJSON, timed from send to answer
//!    (validation of the whole body included), against `enqueue_many` in chunks of 10,000.

use crate::harness::{self, rate};
use crate::report::{fmt_num, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, Lane};
use onboard_tests::api::{ApiServer, TokenSpec};
use std::future::Future;
use std::time::{Duration, Instant};

/// Requests per second offered.
const RATE: u32 = 1_000;

/// Latencies of an open-loop run, sorted, and how many calls failed.
struct Run {
    latencies: Vec<Duration>,
    failed: usize,
}

impl Run {
    fn pct_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1].as_secs_f64() * 1000.0
    }
}

/// Calls `call(i)` for `i` in `0..rate*secs`, request `i` at `start + i/rate`.
async fn open_loop<F, Fut>(secs: u64, call: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let n = (RATE as u64 * secs) as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / RATE as f64);
        let fut = call(i);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let ok = fut.await;
            (at.elapsed(), ok)
        }));
    }
    let mut run = Run {
        latencies: Vec::with_capacity(n),
        failed: 0,
    };
    for t in tasks {
        match t.await {
            Ok((took, ok)) => {
                run.latencies.push(took);
                run.failed += usize::from(!ok);
            }
            Err(_) => run.failed += 1,
        }
    }
    run.latencies.sort();
    run
}

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let secs: u64 = if quick { 3 } else { 10 };
    let batch_n: usize = if quick { 20_000 } else { 1_000_000 };
    let redis = harness::start_redis().await?;
    let store = harness::store(&redis).await?;
    let token = TokenSpec::new("bench", "operator");
    // Starting waits for its ready line: off the runtime's threads.
    let extra = "rate_per_sec = 1000000\nburst = 1000000";
    let server = tokio::task::block_in_place(|| {
        ApiServer::start(&redis, std::slice::from_ref(&token), extra)
    });
    let mut rec = RecordBuilder::new("http", quick);
    rec.figure("offered_requests_per_sec", RATE);
    rec.figure("seconds", secs);

    // 1. Single POSTs over HTTP.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/jobs/create-customer", server.url());
    let bearer = format!("Bearer {}", token.token);
    let over_http = open_loop(secs, |i| {
        let body = serde_json::to_string(&super::customer_payload(i)).unwrap_or_default();
        let req = http
            .post(&url)
            .header("Authorization", &bearer)
            .header("Content-Type", "application/json")
            .body(body);
        async move { req.send().await.is_ok_and(|r| r.status().as_u16() == 202) }
    })
    .await;
    let queued = store.queue_stats(JobKind::CreateCustomer).await?.queued;
    if over_http.failed > 0 || queued != over_http.latencies.len() as u64 {
        bail!(
            "{} of {} POSTs failed; {queued} jobs queued",
            over_http.failed,
            over_http.latencies.len()
        );
    }
    // The library path, same schedule, on a flushed Redis.
    harness::flush(&redis).await?;
    let library = open_loop(secs, |i| {
        let store = store.clone();
        let job = Job::CreateCustomer(super::customer_payload(i));
        async move {
            let opts = EnqueueOptions {
                lane: Some(Lane::Live),
                source: Some("bench".into()),
                ..Default::default()
            };
            store.enqueue(&job, &opts).await.is_ok()
        }
    })
    .await;
    let (http_p50, http_p99, http_max) = (
        over_http.pct_ms(0.5),
        over_http.pct_ms(0.99),
        over_http.pct_ms(1.0),
    );
    let (lib_p50, lib_p99) = (library.pct_ms(0.5), library.pct_ms(0.99));
    rec.figure("http_post_p50_ms", http_p50);
    rec.figure("http_post_p99_ms", http_p99);
    rec.figure("http_post_max_ms", http_max);
    rec.figure("lib_enqueue_p50_ms", lib_p50);
    rec.figure("lib_enqueue_p99_ms", lib_p99);

    // 2. A batch upload against enqueue_many.
    harness::flush(&redis).await?;
    let mut body = String::with_capacity(batch_n * 80);
    for i in 0..batch_n {
        body.push_str(&serde_json::to_string(&super::customer_payload(i)).context("payload")?);
        body.push('\n');
    }
    let started = Instant::now();
    let resp = http
        .post(format!("{}/v1/batches?kind=create-customer", server.url()))
        .header("Authorization", &bearer)
        .body(body)
        .send()
        .await
        .context("POST /v1/batches")?;
    let took = started.elapsed();
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.unwrap_or_default();
    if status.as_u16() != 202 || answer["new_jobs"] != batch_n as u64 {
        bail!("batch upload answered {status}: {answer}");
    }
    let batch_rate = rate(batch_n as u64, took);
    harness::flush(&redis).await?;
    let jobs: Vec<(Job, EnqueueOptions)> = (0..batch_n)
        .map(|i| {
            (
                Job::CreateCustomer(super::customer_payload(i)),
                EnqueueOptions::default(),
            )
        })
        .collect();
    let lib_took = harness::enqueue_chunks(&store, &jobs, 10_000).await?;
    let lib_rate = rate(batch_n as u64, lib_took);
    rec.figure("batch_jobs", batch_n as u64);
    rec.figure("http_batch_jobs_per_sec", batch_rate.round());
    rec.figure("lib_enqueue_many_10000_jobs_per_sec", lib_rate.round());
    rec.note("load generator: this scenario's own open-loop tokio + reqwest client (no packaged HTTP load generator is installable here); latency from each request's scheduled time, so queueing in the generator counts");
    rec.note("server, redis-server and the generator share the machine's cores");
    rec.note("the batch upload validates the whole body (spooled to a file, the backfill passes) before enqueueing it as one bulk batch with natural-key idempotency keys; the library run has no keys");

    let target = Target::new(
        "http_post_p99_ms",
        "<=",
        5.0,
        "single-job POST p99 <= 5 ms at 1,000 requests/s (and batch upload >= 50,000 jobs/s)",
    );
    let summary = format!(
        "POST /v1/jobs at {RATE}/s for {secs} s: p50 {http_p50:.2} ms, p99 {http_p99:.2} ms, max {http_max:.1} ms (library enqueue same schedule: p50 {lib_p50:.2} ms, p99 {lib_p99:.2} ms); batch upload of {batch_n} jobs {} jobs/s (library enqueue_many(10k) {} jobs/s)",
        fmt_num(batch_rate),
        fmt_num(lib_rate),
    );
    drop(server);
    Ok(rec.finish(
        target,
        http_p99,
        batch_rate >= 50_000.0,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
