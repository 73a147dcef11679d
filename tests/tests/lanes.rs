//! Who goes first at a provider: live before bulk, bulk keeping its minimum share,
//! round-robin (and weights) between sources, admission at the rate limit so that claimed
//! bulk jobs never hold a live job back by more than the limiter's window; and steering:
//! batches paused, resumed and cancelled (a cancel racing claims, keys released), kinds
//! paused. Against a real redis-server, through the store.

use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::*;
use onboard_shared::queue::*;
use onboard_tests::RedisServer;
use std::time::Duration;

const CC: JobKind = JobKind::CreateCustomer;

async fn store(redis: &RedisServer, adjust: impl FnOnce(&mut Config)) -> JobStore {
    let mut cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    adjust(&mut cfg);
    JobStore::connect(&cfg).await.expect("connect")
}

fn customer(tag: &str, i: usize) -> Job {
    Job::CreateCustomer(CreateCustomerJob {
        customer_id: format!("{tag}{i}"),
        country_code: "86".into(),
        phone_number: format!("139{i:08}"),
    })
}

/// Enqueues `n` create-customer jobs tagged `tag` in `lane` from `source`.
async fn enqueue(s: &JobStore, tag: &str, n: usize, lane: Lane, source: &str) -> Vec<String> {
    let jobs: Vec<_> = (0..n)
        .map(|i| {
            let opts = EnqueueOptions {
                idempotency_key: Some(format!("{tag}{i}")),
                lane: Some(lane),
                source: Some(source.into()),
                ..Default::default()
            };
            (customer(tag, i), opts)
        })
        .collect();
    s.enqueue_many(&jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Claims one job at a time, `n` times; the tag of each (its customer id's prefix).
async fn claim_tags(s: &JobStore, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let got = s.fetch(CC, 1, "t").await.unwrap().jobs;
        let Some(j) = got.first() else { break };
        match &j.job {
            Job::CreateCustomer(c) => {
                out.push(c.customer_id.trim_end_matches(char::is_numeric).to_string())
            }
            other => panic!("{other:?}"),
        }
    }
    out
}

#[tokio::test]
async fn live_goes_first_and_bulk_keeps_its_share() {
    let redis = RedisServer::start();
    // A share of 1/4: bulk is owed one claim after three live ones.
    let s = store(&redis, |c| c.limits.bulk_min_share = 0.25).await;
    enqueue(&s, "bulk", 20, Lane::Bulk, "backfill").await;
    enqueue(&s, "live", 20, Lane::Live, "app").await;
    let order = claim_tags(&s, 12).await;
    assert_eq!(
        order,
        [
            "live", "live", "live", "bulk", "live", "live", "live", "bulk", "live", "live", "live",
            "bulk"
        ],
    );
    // With no live work, bulk takes everything.
    let s = store(&redis, |c| c.limits.bulk_min_share = 0.25).await;
    let rest = claim_tags(&s, 40).await;
    assert_eq!(rest.iter().filter(|t| *t == "live").count(), 11);
    assert_eq!(rest.iter().filter(|t| *t == "bulk").count(), 17);
}

#[tokio::test]
async fn sources_take_turns_by_weight() {
    let redis = RedisServer::start();
    let s = store(&redis, |_| {}).await;
    enqueue(&s, "a", 10, Lane::Bulk, "batch_a").await;
    enqueue(&s, "b", 10, Lane::Bulk, "batch_b").await;
    assert_eq!(claim_tags(&s, 6).await, ["a", "b", "a", "b", "a", "b"]);
    s.set_source_weight("batch_b", 2).await.unwrap();
    let order = claim_tags(&s, 6).await;
    assert_eq!(order.iter().filter(|t| *t == "b").count(), 4, "{order:?}");
    assert_eq!(order.iter().filter(|t| *t == "a").count(), 2, "{order:?}");
}

/// Claims up to `batch` jobs per fetch until `n` are claimed; each job's customer id, in
/// claim order.
async fn claim_ids(s: &JobStore, n: usize, batch: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let got = s
            .fetch(CC, batch.min(n - out.len()), "t")
            .await
            .unwrap()
            .jobs;
        if got.is_empty() {
            break;
        }
        for j in got {
            match j.job {
                Job::CreateCustomer(c) => out.push(c.customer_id),
                other => panic!("{other:?}"),
            }
        }
    }
    out
}

/// A claim takes a source's turn with one pop of several ids (fetch.lua): the jobs, and
/// their order, are those that claims of one job each would choose, live and bulk shares,
/// round-robin and weights included.
#[tokio::test]
async fn a_claim_of_many_chooses_as_claims_of_one_would() {
    let mut orders = Vec::new();
    for batch in [1, 7, 50] {
        let redis = RedisServer::start();
        let s = store(&redis, |c| c.limits.bulk_min_share = 0.25).await;
        s.set_source_weight("batch_b", 3).await.unwrap();
        enqueue(&s, "a", 20, Lane::Bulk, "batch_a").await;
        enqueue(&s, "b", 20, Lane::Bulk, "batch_b").await;
        enqueue(&s, "live", 15, Lane::Live, "app").await;
        enqueue(&s, "web", 5, Lane::Live, "web").await;
        orders.push(claim_ids(&s, 60, batch).await);
    }
    assert_eq!(orders[0].len(), 60);
    // Live first with bulk owed one claim in four; sources in turn, b three at a time.
    assert_eq!(
        orders[0][..12],
        [
            "live0", "web0", "live1", "a0", "web1", "live2", "web2", "b0", "live3", "web3",
            "live4", "b1"
        ]
    );
    assert_eq!(orders[1], orders[0], "claims of 7");
    assert_eq!(orders[2], orders[0], "claims of 50");
}

/// A claim from one source pops its jobs together: one LPOP for a claim of 100, not one per
/// job (each command a script makes costs Redis more than the command itself).
#[tokio::test]
async fn a_claim_from_one_source_pops_its_jobs_at_once() {
    let redis = RedisServer::start();
    let s = store(&redis, |_| {}).await;
    enqueue(&s, "a", 300, Lane::Bulk, "batch_a").await;
    let mut conn = redis.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn)
        .unwrap();
    let ids = claim_ids(&s, 300, 100).await;
    assert_eq!(ids.len(), 300);
    assert_eq!(ids[..3], ["a0", "a1", "a2"]);
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    let calls = |command: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(calls("lpop"), 3, "{stats}");
    assert!(calls("hmget") <= 3, "{stats}");
    assert!(calls("zadd") <= 3, "{stats}");
}

#[tokio::test]
async fn admission_at_the_limit_keeps_claimed_bulk_from_holding_live_work_back() {
    let redis = RedisServer::start();
    // 10 requests per second: a slot every 104 ms (with the limiter's margin); slots are
    // reserved at most a second ahead.
    let s = store(&redis, |c| {
        c.limits.iot = 10.0;
        c.limits.reserve_ahead_ms = 1_000;
    })
    .await;
    enqueue(&s, "bulk", 100, Lane::Bulk, "backfill").await;
    let claim = |batch| ClaimRequest {
        kinds: &[CC],
        batch,
        token_prefix: "t",
        admission: true,
    };
    let first = s.claim(&claim(50)).await.unwrap();
    assert!(
        (9..=11).contains(&first.jobs.len()),
        "only what the limit admits within a second: {}",
        first.jobs.len()
    );
    let slots: Vec<_> = first
        .jobs
        .iter()
        .map(|j| j.slot.expect("a reserved slot"))
        .collect();
    assert!(
        slots.windows(2).all(|w| w[1].at > w[0].at),
        "slots in order"
    );
    // The limit is spent for now: nothing more, and how long until the next slot.
    let held = s.claim(&claim(50)).await.unwrap();
    assert!(held.jobs.is_empty());
    assert!(
        held.wait_ms > 0 && held.wait_ms <= 1_000,
        "{}",
        held.wait_ms
    );
    // A live job arriving now takes the next slot, ahead of the 90 bulk jobs queued.
    enqueue(&s, "live", 1, Lane::Live, "app").await;
    tokio::time::sleep(Duration::from_millis(held.wait_ms)).await;
    let next = s.claim(&claim(1)).await.unwrap();
    let Job::CreateCustomer(c) = &next.jobs[0].job else {
        panic!()
    };
    assert_eq!(c.customer_id, "live0");
}

#[tokio::test]
async fn a_batch_is_paused_resumed_and_cancelled_and_its_keys_are_free_again() {
    let redis = RedisServer::start();
    let s = store(&redis, |_| {}).await;
    let batch = s.create_batch("customers.csv").await.unwrap();
    let ids = enqueue(&s, "c", 10, Lane::Bulk, &batch).await;
    let status = s.batch_status(&batch).await.unwrap();
    assert_eq!((status.enqueued, status.queued), (10, 10));

    s.set_batch_state(&batch, BatchState::Paused).await.unwrap();
    assert!(
        s.fetch(CC, 10, "t").await.unwrap().jobs.is_empty(),
        "paused: nothing claimed"
    );
    s.set_batch_state(&batch, BatchState::Active).await.unwrap();
    // Three start; then the cancel races the claims that follow.
    let running = s.fetch(CC, 3, "t").await.unwrap().jobs;
    assert_eq!(running.len(), 3);
    let cancelled = s.cancel_batch(&batch).await.unwrap();
    assert_eq!(cancelled, 7);
    assert!(s.fetch(CC, 10, "t").await.unwrap().jobs.is_empty());
    for id in &ids[3..] {
        assert_eq!(
            s.status(id, false).await.unwrap().state,
            JobState::Cancelled
        );
    }
    // What was running finishes.
    let result = serde_json::json!({});
    let batch_acks: Vec<_> = running
        .iter()
        .map(|j| (j.id.as_str(), j.token.as_str(), &result))
        .collect();
    assert!(s
        .ack_succeeded(CC, &batch_acks)
        .await
        .unwrap()
        .iter()
        .all(|a| *a == AckStatus::Succeeded));
    let status = s.batch_status(&batch).await.unwrap();
    assert_eq!(status.state, BatchState::Cancelled);
    assert_eq!(
        (
            status.succeeded,
            status.cancelled,
            status.queued,
            status.in_flight
        ),
        (3, 7, 0, 0)
    );
    assert!(
        s.set_batch_state(&batch, BatchState::Active).await.is_err(),
        "cancelled for good"
    );
    // The cancelled rows' keys are free: a corrected file enqueues them anew; the three
    // that ran keep theirs.
    let again = enqueue(&s, "c", 10, Lane::Bulk, "next-run").await;
    for (i, (old, new)) in ids.iter().zip(&again).enumerate() {
        if i < 3 {
            assert_eq!(old, new, "row {i} ran: its key still stands");
        } else {
            assert_ne!(old, new, "row {i} was cancelled: enqueued anew");
        }
    }
}

#[tokio::test]
async fn a_paused_kind_stays_queued_until_resumed() {
    let redis = RedisServer::start();
    let s = store(&redis, |_| {}).await;
    enqueue(&s, "c", 3, Lane::Live, "app").await;
    assert!(s.pause_kind(CC, true).await.unwrap());
    assert!(!s.pause_kind(CC, true).await.unwrap(), "already paused");
    assert!(s.fetch(CC, 10, "t").await.unwrap().jobs.is_empty());
    let stats = s.queue_stats(CC).await.unwrap();
    assert!(stats.paused);
    assert_eq!((stats.queued, stats.queued_live), (3, 3));
    assert!(s.pause_kind(CC, false).await.unwrap());
    assert_eq!(s.fetch(CC, 10, "t").await.unwrap().jobs.len(), 3);
}

/// An app can spawn an enqueue (its future is `Send`): what the HTTP server and the
/// benchmarks' live load do.
#[tokio::test]
async fn an_enqueue_can_be_spawned() {
    let redis = RedisServer::start();
    let s = store(&redis, |_| {}).await;
    let spawned = tokio::spawn({
        let s = s.clone();
        async move {
            let jobs = vec![(customer("x", 1), EnqueueOptions::default())];
            s.enqueue_many(&jobs).await
        }
    });
    let done = spawned.await.unwrap().unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(
        s.status(&done[0].id, false).await.unwrap().state,
        JobState::Queued
    );
}
