//! Poison in Redis stalls nothing: one test per shape of poison (a field that is not a
//! number or is missing; a key of the wrong type for a job record and for each queue key;
//! an id without a record in each set). In each, the good jobs around the poison all
//! succeed, the poison ends in the dead-letter set with a reason naming the key (and the
//! field), `dead list` and `stats` keep working and show it, and `dead purge` removes it.

use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::*;
use onboard_shared::queue::keys::QueueKeys;
use onboard_shared::queue::*;
use onboard_shared::ErrorClass;
use onboard_tests::RedisServer;
use redis::Commands;
use std::time::Duration;

const CC: JobKind = JobKind::CreateCustomer;

async fn store(redis: &RedisServer) -> JobStore {
    let mut cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    cfg.queue.lease_ms = 5_000;
    JobStore::connect(&cfg).await.expect("connect")
}

fn customer(i: usize) -> Job {
    Job::CreateCustomer(CreateCustomerJob {
        customer_id: format!("c{i}"),
        country_code: "86".into(),
        phone_number: format!("139{i:08}"),
    })
}

fn keys() -> QueueKeys {
    QueueKeys::new(CC)
}

/// Enqueues good create-customer jobs `range`; returns their ids.
async fn enqueue_good(s: &JobStore, range: std::ops::Range<usize>) -> Vec<String> {
    let jobs: Vec<_> = range
        .map(|i| (customer(i), EnqueueOptions::default()))
        .collect();
    s.enqueue_many(&jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Does what a worker does until nothing is left to claim: fetch, succeed each job.
async fn drain(s: &JobStore) {
    loop {
        let got = s
            .fetch(CC, 50, "t")
            .await
            .expect("fetch never fails on poison");
        if got.jobs.is_empty() && got.quarantined == 0 {
            return;
        }
        let result = serde_json::json!({"status": "OK"});
        let batch: Vec<_> = got
            .jobs
            .iter()
            .map(|j| (j.id.as_str(), j.token.as_str(), &result))
            .collect();
        s.ack_succeeded(CC, &batch).await.unwrap();
    }
}

async fn assert_all_succeeded(s: &JobStore, ids: &[String]) {
    for id in ids {
        assert_eq!(
            s.status(id, false).await.unwrap().state,
            JobState::Succeeded,
            "{id}"
        );
    }
}

/// The dead-letter entry whose error mentions `needle`; asserts there is exactly one.
async fn dead_entry(s: &JobStore, needle: &str) -> JobStatus {
    let dead = s
        .dead_letters(CC, 100)
        .await
        .expect("dead list works with poison");
    let found: Vec<_> = dead
        .into_iter()
        .filter(|d| {
            d.last_error
                .as_ref()
                .is_some_and(|e| e.message.contains(needle))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one dead entry mentioning {needle:?}: {found:?}"
    );
    let entry = found.into_iter().next().unwrap();
    assert_eq!(entry.state, JobState::Dead);
    assert_eq!(
        entry.last_error.as_ref().map(|e| e.class),
        Some(ErrorClass::Undecodable)
    );
    entry
}

/// Purges a dead entry and checks it is gone, with nothing of it left in Redis.
async fn purge(s: &JobStore, redis: &RedisServer, entry: &JobStatus) {
    s.purge_dead(&entry.id).await.expect("purge removes poison");
    let dead = s.dead_letters(CC, 100).await.unwrap();
    assert!(dead.iter().all(|d| d.id != entry.id), "{} purged", entry.id);
    let mut conn = redis.connection();
    let left: Vec<String> = conn.keys(format!("*{}*", entry.id)).unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
    let poison: Vec<String> = conn.keys("*:poison:*").unwrap();
    assert!(
        poison.is_empty(),
        "keys set aside are purged too: {poison:?}"
    );
}

/// A record claimed from the ready list with `field` set to `value` (or removed).
async fn record_with(
    s: &JobStore,
    redis: &RedisServer,
    field: &str,
    value: Option<&str>,
) -> String {
    // A retried job has a record of its own: claim it, retry it at once.
    let id = enqueue_good(s, 1000..1001).await.remove(0);
    let j = s.fetch(CC, 1, "t").await.unwrap().jobs.remove(0);
    s.ack(
        CC,
        &j.id,
        &j.token,
        &Ack::Retry {
            delay_ms: 0,
            error: ErrorRecord::new(ErrorClass::Transient, "X", "x"),
            uncertain: false,
        },
    )
    .await
    .unwrap();
    let mut conn = redis.connection();
    match value {
        Some(v) => conn.hset::<_, _, _, ()>(keys().job(&id), field, v).unwrap(),
        None => conn.hdel::<_, _, ()>(keys().job(&id), field).unwrap(),
    }
    id
}

#[tokio::test]
async fn a_field_that_is_not_a_number_or_is_missing() {
    for (field, value) in [("attempts", Some("abc")), ("max_attempts", None)] {
        let redis = RedisServer::start();
        let s = store(&redis).await;
        let poisoned = record_with(&s, &redis, field, value).await;
        let before = enqueue_good(&s, 0..8).await;
        let after = enqueue_good(&s, 8..16).await;
        drain(&s).await;
        assert_all_succeeded(&s, &before).await;
        assert_all_succeeded(&s, &after).await;
        let entry = dead_entry(
            &s,
            &format!("field {field} of key {}", keys().job(&poisoned)),
        )
        .await;
        assert_eq!(entry.id, poisoned);
        assert_eq!(s.queue_stats(CC).await.unwrap().dead, 1);
        purge(&s, &redis, &entry).await;
    }
}

#[tokio::test]
async fn a_job_record_of_the_wrong_type_in_each_set() {
    for set in ["ready", "scheduled", "leased"] {
        let redis = RedisServer::start();
        let s = store(&redis).await;
        let before = enqueue_good(&s, 0..8).await;
        let mut conn = redis.connection();
        let id = "cust_01POISONSTRING";
        conn.set::<_, _, ()>(keys().job(id), "not a hash").unwrap();
        match set {
            "ready" => onboard_tests::push_ready(&mut conn, CC, id),
            "scheduled" => conn.zadd::<_, _, _, ()>(keys().scheduled(), id, 1).unwrap(),
            _ => conn.zadd::<_, _, _, ()>(keys().leased(), id, 1).unwrap(),
        }
        let after = enqueue_good(&s, 8..16).await;
        drain(&s).await;
        assert_all_succeeded(&s, &before).await;
        assert_all_succeeded(&s, &after).await;
        let entry = dead_entry(
            &s,
            &format!("key {} is a string, not a hash", keys().job(id)),
        )
        .await;
        assert!(
            entry.last_error.as_ref().unwrap().message.contains(set),
            "names the {set}"
        );
        purge(&s, &redis, &entry).await;
    }
}

#[tokio::test]
async fn an_id_without_a_record_in_each_set() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let before = enqueue_good(&s, 0..8).await;
    let mut conn = redis.connection();
    onboard_tests::push_ready(&mut conn, CC, "cust_01NORECREADY");
    conn.zadd::<_, _, _, ()>(keys().scheduled(), "cust_01NORECSCHED", 1)
        .unwrap();
    conn.zadd::<_, _, _, ()>(keys().leased(), "cust_01NORECLEASED", 1)
        .unwrap();
    conn.zadd::<_, _, _, ()>(keys().waiting(), "cust_01NORECWAITING", 1)
        .unwrap();
    let acct = QueueKeys::new(JobKind::CreateAccount);
    conn.zadd::<_, _, _, ()>(acct.awaiting(), "acct_01NORECAWAITING", 1)
        .unwrap();
    // A dead-letter member with nothing behind it, and one that is not even a job id.
    conn.zadd::<_, _, _, ()>(keys().dead(), "cust_01NORECDEAD", 1)
        .unwrap();
    conn.zadd::<_, _, _, ()>(keys().dead(), "garbage member", 2)
        .unwrap();
    let after = enqueue_good(&s, 8..16).await;
    drain(&s).await;
    s.recheck_waiting(CC, Duration::ZERO)
        .await
        .expect("housekeeping works");
    s.expire_codes(JobKind::CreateAccount)
        .await
        .expect("housekeeping works");
    assert_all_succeeded(&s, &before).await;
    assert_all_succeeded(&s, &after).await;
    for (id, seen_in) in [
        ("cust_01NORECREADY", "ready list"),
        ("cust_01NORECSCHED", "scheduled set"),
        ("cust_01NORECLEASED", "leased set"),
        ("cust_01NORECWAITING", "waiting set"),
    ] {
        let entry = dead_entry(&s, &format!("the {seen_in} named job {id}")).await;
        purge(&s, &redis, &entry).await;
    }
    let dead = s.dead_letters(JobKind::CreateAccount, 10).await.unwrap();
    assert!(dead[0]
        .last_error
        .as_ref()
        .unwrap()
        .message
        .contains("awaiting set"));
    s.purge_dead(&dead[0].id).await.unwrap();
    for (id, why) in [
        ("cust_01NORECDEAD", "it has no record"),
        ("garbage member", "it is not a job id"),
    ] {
        let entry = dead_entry(&s, &format!("lists {id}, but {why}")).await;
        purge(&s, &redis, &entry).await;
    }
    assert_eq!(s.queue_stats(CC).await.unwrap().dead, 0);
}

#[tokio::test]
async fn a_queue_key_of_the_wrong_type() {
    for name in [
        "pending",
        "ready",
        "scheduled",
        "leased",
        "waiting",
        "awaiting",
        "dead",
    ] {
        let redis = RedisServer::start();
        let s = store(&redis).await;
        let kind = if name == "awaiting" {
            JobKind::CreateAccount
        } else {
            CC
        };
        let k = QueueKeys::new(kind);
        let key = match name {
            "ready" => k.ready(onboard_shared::queue::Lane::Bulk, "default"),
            _ => format!("{}{name}", k.prefix()),
        };
        let before = enqueue_good(&s, 0..8).await;
        let mut conn = redis.connection();
        if name == "pending" || name == "ready" {
            // These hold the jobs just enqueued: claim them first, then poison the key.
            let got = s.fetch(CC, 50, "t").await.unwrap().jobs;
            let result = serde_json::json!({});
            let batch: Vec<_> = got
                .iter()
                .map(|j| (j.id.as_str(), j.token.as_str(), &result))
                .collect();
            s.ack_succeeded(CC, &batch).await.unwrap();
        }
        conn.set::<_, _, ()>(&key, "poison").unwrap();
        // Stats go on, naming the bad key (an empty ready list is not theirs to look at).
        let stats = s
            .queue_stats(kind)
            .await
            .expect("stats work with a bad key");
        if name != "ready" {
            assert_eq!(stats.malformed_keys, std::slice::from_ref(&key));
        }
        // Whatever uses the key next sets it aside and carries on.
        let after = enqueue_good(&s, 8..16).await;
        drain(&s).await;
        s.recheck_waiting(CC, Duration::ZERO).await.unwrap();
        s.expire_codes(JobKind::CreateAccount).await.unwrap();
        assert_all_succeeded(&s, &before).await;
        assert_all_succeeded(&s, &after).await;
        let dead = s.dead_letters(kind, 100).await.expect("dead list works");
        let entry: Vec<_> = dead
            .iter()
            .filter(|d| {
                d.last_error
                    .as_ref()
                    .is_some_and(|e| e.message.contains(&format!("key {key} was a string")))
            })
            .collect();
        assert_eq!(entry.len(), 1, "{name}: {dead:?}");
        assert_eq!(entry[0].last_error.as_ref().unwrap().code, "MalformedKey");
        assert!(s.queue_stats(kind).await.unwrap().malformed_keys.is_empty());
        s.purge_dead(&entry[0].id).await.unwrap();
        let poison: Vec<String> = conn.keys("*:poison:*").unwrap();
        assert!(
            poison.is_empty(),
            "{name}: the key set aside is purged too: {poison:?}"
        );
    }
}
