//! `enqueue`: bulk enqueue of create-customer jobs.
//!
//! Ours twice: the real `onboard-producer backfill FILE --kind create-customer` process
//! (validation pass included, timed from spawn to exit), and the library path
//! `JobStore::enqueue_many` in chunks of 10,000. The peer: apalis-redis `push_bulk` of the
//! same payloads in chunks of 1,000 and of 10,000. Each run on a flushed private Redis.
//!
//! The CLI run also measures the backlog it leaves: Redis's `used_memory` (`INFO memory`)
//! after the backfill less before it, per waiting job, idempotency keys included, against
//! DESIGN.md's 300 bytes (a 1,000,000-row backfill in 300 MiB). The events stream is capped
//! (`queue.events_maxlen`, 100,000 entries), so it weighs more per job at the quick size;
//! its share is reported beside.

use crate::harness::{self, rate};
use crate::peer;
use crate::report::{fmt_num, times, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use onboard_shared::jobs::{CreateCustomerJob, Job, JobKind};
use onboard_shared::queue::EnqueueOptions;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let n: usize = if quick { 20_000 } else { 1_000_000 };
    let payloads: Vec<CreateCustomerJob> = (0..n).map(super::customer_payload).collect();
    let redis = harness::start_redis().await?;
    let mut rec = RecordBuilder::new("enqueue", quick);
    rec.figure("jobs", n as u64);

    // Ours, the CLI: backfill a CSV file.
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("customers.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(w, "customer_id,country_code,phone_number")?;
        for p in &payloads {
            writeln!(w, "{},{},{}", p.customer_id, p.country_code, p.phone_number)?;
        }
        w.flush()?;
    }
    let producer = harness::binary("onboard-producer")?;
    let memory_before = harness::used_memory(&redis).await?;
    let url = redis.url();
    let csv_path = csv.clone();
    let (status, took, stderr) = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let out = Command::new(producer)
            .arg("backfill")
            .arg(&csv_path)
            .args(["--kind", "create-customer"])
            .env("ONBOARD_REDIS_URL", url)
            .env("ONBOARD_PROFILE", "sandbox")
            .env("ONBOARD_LOG", "warn")
            .stdin(Stdio::null())
            .output();
        out.map(|o| (o.status, start.elapsed(), o.stderr))
    })
    .await
    .context("backfill task")?
    .context("run onboard-producer backfill")?;
    if !status.success() {
        bail!(
            "onboard-producer backfill failed ({status}): {}",
            String::from_utf8_lossy(&stderr)
        );
    }
    let store = harness::store(&redis).await?;
    let enqueued = store.queue_stats(JobKind::CreateCustomer).await?.queued;
    if enqueued != n as u64 {
        bail!("backfill left {enqueued} queued jobs, expected {n}");
    }
    let cli = rate(n as u64, took);
    rec.figure("cli_backfill_jobs_per_sec", cli.round());
    rec.figure("cli_backfill_secs", took.as_secs_f64());
    let backlog = backlog_bytes(&redis, memory_before, n).await?;
    backlog.record(&mut rec);

    // Ours, the library: enqueue_many in chunks of 10,000.
    harness::flush(&redis).await?;
    let jobs: Vec<(Job, EnqueueOptions)> = payloads
        .iter()
        .map(|p| (Job::CreateCustomer(p.clone()), EnqueueOptions::default()))
        .collect();
    let took = harness::enqueue_chunks(&store, &jobs, 10_000).await?;
    drop(jobs);
    let lib = rate(n as u64, took);
    rec.figure("lib_enqueue_many_10000_jobs_per_sec", lib.round());

    // The peer: push_bulk in chunks of 1,000 and 10,000.
    harness::flush(&redis).await?;
    let peer_1k = peer::push_bulk(&redis, "bench-enqueue", &payloads, 1_000).await?;
    harness::flush(&redis).await?;
    let peer_10k = peer::push_bulk(&redis, "bench-enqueue", &payloads, 10_000).await?;
    rec.peer("push_bulk_1000_jobs_per_sec", peer_1k.round());
    rec.peer("push_bulk_10000_jobs_per_sec", peer_10k.round());
    rec.ratio("lib_10000_vs_push_bulk_10000", lib, peer_10k);
    rec.ratio("cli_vs_push_bulk_1000", cli, peer_1k);
    rec.note("ours: payloads encrypted at rest (AES-GCM), each script call of 500 jobs writes their pending entries and ready ids with one variadic HSET and one RPUSH, and one events entry per job, no idempotency key in the library run; the CLI run validates the whole file first, then enqueues with an idempotency key per row");
    rec.note("peer: apalis-redis RedisStorage Config::default(), JSON codec, push_bulk (one batch_push.lua call per chunk)");

    let target = Target::new(
        "min(cli, lib) jobs_per_sec",
        ">=",
        100_000.0,
        "bulk enqueue >= 100,000 jobs/s, and a backlog of <= 300 bytes of Redis memory per waiting job",
    );
    let summary = format!(
        "{} jobs: ours CLI backfill {} jobs/s, library enqueue_many(10k) {} jobs/s; apalis-redis push_bulk(1k) {} jobs/s, push_bulk(10k) {} jobs/s; ratio lib/peer(10k) {:.2}x, cli/peer(1k) {:.2}x; {}",
        n,
        fmt_num(cli),
        fmt_num(lib),
        fmt_num(peer_1k),
        fmt_num(peer_10k),
        times(lib, peer_10k),
        times(cli, peer_1k),
        backlog.summary(),
    );
    Ok(rec.finish(
        target,
        cli.min(lib),
        backlog.per_job <= BACKLOG_TARGET_BYTES,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}

/// DESIGN.md: Redis memory per waiting job, idempotency key included.
const BACKLOG_TARGET_BYTES: f64 = 300.0;

/// What the CLI backfill's backlog holds in Redis.
struct Backlog {
    jobs: usize,
    /// `used_memory` after less before, per job.
    per_job: f64,
    /// The share of the events stream (capped), per job.
    events_per_job: f64,
    /// The `pending` hash, per job.
    pending_per_job: f64,
}

async fn backlog_bytes(
    redis: &harness::RedisServer,
    before: u64,
    jobs: usize,
) -> anyhow::Result<Backlog> {
    let after = harness::used_memory(redis).await?;
    let keys = onboard_shared::queue::keys::QueueKeys::new(JobKind::CreateCustomer);
    let per = |bytes: u64| bytes as f64 / jobs as f64;
    Ok(Backlog {
        jobs,
        per_job: per(after.saturating_sub(before)),
        events_per_job: per(
            harness::memory_usage(redis, onboard_shared::events::STREAM_KEY).await?,
        ),
        pending_per_job: per(harness::memory_usage(redis, &keys.pending()).await?),
    })
}

impl Backlog {
    fn record(&self, rec: &mut RecordBuilder) {
        use crate::report::round;
        rec.figure("redis_bytes_per_waiting_job", round(self.per_job, 1))
            .figure("redis_bytes_per_waiting_job_target", BACKLOG_TARGET_BYTES)
            .figure("redis_backlog_mib", round(self.per_job * self.jobs as f64 / 1_048_576.0, 1))
            .figure("events_stream_bytes_per_job", round(self.events_per_job, 1))
            .figure("pending_hash_bytes_per_job", round(self.pending_per_job, 1))
            .note("redis_bytes_per_waiting_job: INFO memory used_memory after the CLI backfill less before it, divided by the jobs, idempotency keys included; the events stream is capped at queue.events_maxlen entries, so its share per job is larger at the quick size");
    }

    fn summary(&self) -> String {
        format!(
            "backlog {:.0} bytes/waiting job ({:.0} MiB for {}; target <= {BACKLOG_TARGET_BYTES:.0}: {})",
            self.per_job,
            self.per_job * self.jobs as f64 / 1_048_576.0,
            self.jobs,
            if self.per_job <= BACKLOG_TARGET_BYTES { "met" } else { "MISSED" }
        )
    }
}
