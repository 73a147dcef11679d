//! Batches and queue pauses end to end: a backfill run through the CLI is a batch that can
//! be paused (across a worker restart), resumed and cancelled; a kind paused in every
//! worker shows as paused in `stats` and the metrics.

use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{BatchState, JobState};
use onboard_tests::fixtures::*;
use onboard_tests::scrape::{scrape, sum};
use onboard_tests::{wait_all, RedisServer, Sandbox, Worker};
use std::io::Write;
use std::time::{Duration, Instant};

/// A CSV of `n` customers `c<i>`.
fn customers_csv(n: usize) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(f, "customer_id,country_code,phone_number").unwrap();
    for i in 0..n {
        writeln!(f, "c{i},86,139{i:08}").unwrap();
    }
    f
}

/// Backfills `file` through the CLI; returns the batch id it printed.
fn backfill(redis: &RedisServer, file: &tempfile::NamedTempFile) -> String {
    let path = file.path().to_str().unwrap();
    let out = cli(
        &redis.url(),
        &["--json", "backfill", path, "--kind", "create-customer"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    summary["batch"].as_str().expect("a batch id").to_string()
}

fn batch_cmd(redis: &RedisServer, args: &[&str]) {
    let out = cli(&redis.url(), args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_batch_stays_paused_across_a_worker_restart_then_finishes() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let p = producer(&redis).await;
    let file = customers_csv(40);
    let batch = backfill(&redis, &file);
    batch_cmd(&redis, &["batch", "pause", &batch]);
    let mut worker = Worker::start(&redis, &sandbox, quick());
    // A live job still runs while the batch is paused: the worker is up and claiming.
    let live = p.enqueue(&user(1), &Default::default()).await.unwrap();
    wait_all(&p, std::slice::from_ref(&live.id), Duration::from_secs(30)).await;
    let status = p.store().batch_status(&batch).await.unwrap();
    assert_eq!(status.state, BatchState::Paused);
    assert_eq!((status.queued, status.succeeded), (40, 0), "{status:?}");
    worker.kill9();
    let _worker = Worker::start(&redis, &sandbox, quick());
    let live = p.enqueue(&user(2), &Default::default()).await.unwrap();
    wait_all(&p, std::slice::from_ref(&live.id), Duration::from_secs(30)).await;
    assert_eq!(p.store().batch_status(&batch).await.unwrap().queued, 40);
    batch_cmd(&redis, &["batch", "resume", &batch]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = p.store().batch_status(&batch).await.unwrap();
        if s.succeeded == 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed batch did not finish: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sandbox.stats()["duplicates"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_batch_frees_its_rows_for_a_corrected_run() {
    let redis = RedisServer::start();
    let file = customers_csv(30);
    let batch = backfill(&redis, &file);
    batch_cmd(&redis, &["batch", "cancel", &batch]);
    let p = producer(&redis).await;
    let status = p.store().batch_status(&batch).await.unwrap();
    assert_eq!(
        (status.state, status.cancelled),
        (BatchState::Cancelled, 30)
    );
    // The same file again enqueues every row anew (their keys were released).
    let again = backfill(&redis, &file);
    assert_ne!(again, batch);
    assert_eq!(p.store().batch_status(&again).await.unwrap().enqueued, 30);
    let out = cli(&redis.url(), &["batch", "resume", &batch]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a cancelled batch stays cancelled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_kind_is_paused_in_every_worker_and_shows_it() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let workers: Vec<Worker> = (0..2)
        .map(|_| Worker::start(&redis, &sandbox, quick()))
        .collect();
    batch_cmd(&redis, &["queue", "pause", "create-customer"]);
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..10).map(customer).collect()).await;
    let user = p.enqueue(&user(9), &Default::default()).await.unwrap();
    wait_all(&p, std::slice::from_ref(&user.id), Duration::from_secs(30)).await;
    for id in &ids {
        assert_eq!(p.status(id, false).await.unwrap().state, JobState::Queued);
    }
    let out = cli(&redis.url(), &["--json", "stats"]);
    let stats: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    let cc = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["kind"] == JobKind::CreateCustomer.as_str())
        .unwrap()
        .clone();
    assert_eq!(cc["paused"], true);
    assert_eq!(cc["queued_bulk"], 10);
    // The gauge follows within a housekeeping round.
    let deadline = Instant::now() + Duration::from_secs(10);
    let cc_label = ("kind", "create-customer");
    while sum(
        &scrape(workers[0].metrics_url()),
        "onboard_queue_paused",
        &[cc_label],
    ) != 1.0
    {
        assert!(Instant::now() < deadline, "the paused gauge did not follow");
        std::thread::sleep(Duration::from_millis(100));
    }
    batch_cmd(&redis, &["queue", "resume", "create-customer"]);
    let done = wait_all(&p, &ids, Duration::from_secs(30)).await;
    assert!(done.iter().all(|s| s.state == JobState::Succeeded));
}
