//! Edges of a job's life in the queue store, each once a way to strand a job or keep one
//! for ever: a quarantine that fails, a child released while the sweeper re-checks it, an
//! expired code job and its idempotency key, a child's own run-at time, an expired parent.

use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::*;
use onboard_shared::queue::keys::QueueKeys;
use onboard_shared::queue::*;
use onboard_shared::secret::Secret;
use onboard_tests::RedisServer;
use redis::Commands;
use std::time::Duration;

async fn store_at(url: &str) -> JobStore {
    let mut cfg = Config {
        profile: Profile::Sandbox,
        redis_url: url.to_string(),
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

fn user(i: usize) -> Job {
    Job::RegisterUser(RegisterUserJob {
        email: format!("u{i}@example.com"),
        mobile: format!("138{i:08}"),
        passwd: Secret::new("secret-pass"),
        name: None,
        industry: None,
        sale_id: None,
    })
}

fn account() -> Job {
    Job::CreateAccount(CreateAccountJob {
        account_type: AccountType::Personal,
        mail: "a@example.com".into(),
        password: Secret::new("Abc123!x"),
        confirm_password: Secret::new("Abc123!x"),
        phone_num: "12345678".into(),
        country_code: "852".into(),
        area: "HK".into(),
        extended: None,
        trade_one: None,
        trade_two: None,
    })
}

/// Finding 3: a Redis error while quarantining one undecodable payload must not abandon the
/// claimed batch (its jobs would stay leased with nobody running them).
#[tokio::test]
async fn a_failed_quarantine_does_not_abandon_the_batch() {
    let redis = RedisServer::start();
    // A user who may do everything but DEL, which only the quarantine's dead-lettering
    // uses here: every quarantine fails, every claim works.
    let mut admin = redis.connection();
    redis.on_every_node(redis::cmd("ACL").arg(&[
        "SETUSER", "worker", "on", ">pw", "~*", "&*", "+@all", "-del",
    ]));
    let s = store_at(&redis.url_as("worker", "pw")).await;
    let cc = QueueKeys::new(JobKind::CreateCustomer);
    let first = s.enqueue(&customer(1), &Default::default()).await.unwrap();
    admin
        .hset_multiple::<_, _, _, ()>(
            cc.job("cust_01GARBAGE"),
            &[
                ("state", "queued"),
                ("payload", "junk"),
                ("attempts", "0"),
                ("max_attempts", "3"),
            ],
        )
        .unwrap();
    onboard_tests::push_ready(&mut admin, JobKind::CreateCustomer, "cust_01GARBAGE");
    let second = s.enqueue(&customer(2), &Default::default()).await.unwrap();

    let got = s
        .fetch(JobKind::CreateCustomer, 10, "t")
        .await
        .expect("the claim succeeds although its quarantine failed");
    let ids: Vec<_> = got.jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, [first.id, second.id], "the good jobs are handed out");
    assert_eq!(got.quarantined, 0, "nothing was quarantined");
}

/// Finding 4: the sweeper's re-check of waiting children must never put back a child that
/// its parent's acknowledgement released in the meantime.
#[tokio::test]
async fn a_released_child_is_not_put_back_to_wait() {
    let redis = RedisServer::start();
    let s = store_at(&redis.url()).await;
    let parent = s.enqueue(&customer(1), &Default::default()).await.unwrap();
    let child = s
        .enqueue(
            &user(1),
            &EnqueueOptions {
                depends_on: Some(parent.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The race's outcome: the child was released (queued) but the re-check had read it
    // from the waiting set just before.
    let users = QueueKeys::new(JobKind::RegisterUser);
    let mut conn = redis.connection();
    conn.hset::<_, _, _, ()>(users.job(&child.id), "state", "queued")
        .unwrap();
    s.recheck_waiting(JobKind::RegisterUser, Duration::ZERO)
        .await
        .unwrap();
    let waiting: u64 = conn.zcard(users.waiting()).unwrap();
    assert_eq!(
        waiting, 0,
        "a child that is not waiting leaves the waiting set"
    );
    assert_eq!(
        s.status(&child.id, false).await.unwrap().state,
        JobState::Queued
    );
}

/// Finding 5: an expired create-account keeps neither its record nor its idempotency key
/// for ever; a code supplied after the deadline changes nothing.
#[tokio::test]
async fn an_expired_job_and_its_key_expire_with_the_retention() {
    let redis = RedisServer::start();
    let s = store_at(&redis.url()).await;
    let opts = EnqueueOptions {
        idempotency_key: Some("acct-1".into()),
        ..Default::default()
    };
    let e = s.enqueue(&account(), &opts).await.unwrap();
    let j = s
        .fetch(JobKind::CreateAccount, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    // A code lifetime of 0: the deadline is now.
    s.ack(
        JobKind::CreateAccount,
        &j.id,
        &j.token,
        &Ack::AwaitCode {
            code_lifetime_ms: 0,
            masked_phone: "****5678".into(),
        },
    )
    .await
    .unwrap();
    let late = s
        .supply_code(&e.id, &Secret::new("123456"))
        .await
        .unwrap_err();
    assert!(late.to_string().contains("is expired"), "{late}");
    assert_eq!(s.expire_codes(JobKind::CreateAccount).await.unwrap(), 1);
    let status = s.status(&e.id, false).await.unwrap();
    assert_eq!(status.state, JobState::Expired);
    let keys = QueueKeys::new(JobKind::CreateAccount);
    let mut conn = redis.connection();
    let finished: Option<u64> = conn.hget(keys.job(&e.id), "finished_ms").unwrap();
    assert!(finished.is_some(), "an expired job has a finish time");
    let retention = s.config().queue.retention_secs as i64;
    let ttl: i64 = conn.ttl(keys.job(&e.id)).unwrap();
    assert!(
        ttl > retention - 60 && ttl <= retention,
        "record: ttl {ttl}"
    );
    // The key is held while the record lives, and goes with it: its entry carries no
    // expiry of its own (`<ulid>|<digest>`).
    let buckets: Vec<String> = conn.keys(keys.idempotency("????")).unwrap();
    assert_eq!(buckets.len(), 1);
    let entries: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&buckets[0]).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.len(), e.id.len() - "acct_".len() + 17);
    assert_eq!(
        s.job_for_idempotency_key(JobKind::CreateAccount, "acct-1")
            .await
            .unwrap(),
        Some(e.id.clone()),
        "held until then"
    );
    // The retention runs out (brought forward here): the key is free.
    let _: () = conn.pexpire(keys.job(&e.id), 1).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while conn.exists::<_, bool>(keys.job(&e.id)).unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the record never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        s.job_for_idempotency_key(JobKind::CreateAccount, "acct-1")
            .await
            .unwrap(),
        None,
        "free once the record is gone"
    );
}

/// Finding 6: a child with a run-at time of its own waits for it after its parent succeeds.
#[tokio::test]
async fn a_child_keeps_its_run_at_time() {
    let redis = RedisServer::start();
    let s = store_at(&redis.url()).await;
    let parent = s.enqueue(&customer(1), &Default::default()).await.unwrap();
    let run_at = onboard_shared::clock::now_ms() + 3_600_000;
    let child = s
        .enqueue(
            &user(1),
            &EnqueueOptions {
                depends_on: Some(parent.id.clone()),
                run_at_ms: Some(run_at),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = s
        .fetch(JobKind::CreateCustomer, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    s.ack(
        JobKind::CreateCustomer,
        &p.id,
        &p.token,
        &Ack::Succeeded(serde_json::json!({})),
    )
    .await
    .unwrap();
    let c = s.status(&child.id, false).await.unwrap();
    assert_eq!(c.state, JobState::Scheduled);
    assert_eq!(c.run_at_ms, Some(run_at));
    assert!(s
        .fetch(JobKind::RegisterUser, 10, "t")
        .await
        .unwrap()
        .jobs
        .is_empty());
}

/// Finding 11: the children of a job that expires are failed at once, not 30 s later by
/// the sweeper's re-check.
#[tokio::test]
async fn an_expired_parent_fails_its_children_at_once() {
    let redis = RedisServer::start();
    let s = store_at(&redis.url()).await;
    let parent = s.enqueue(&account(), &Default::default()).await.unwrap();
    let child = s
        .enqueue(
            &user(1),
            &EnqueueOptions {
                depends_on: Some(parent.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let j = s
        .fetch(JobKind::CreateAccount, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    s.ack(
        JobKind::CreateAccount,
        &j.id,
        &j.token,
        &Ack::AwaitCode {
            code_lifetime_ms: 0,
            masked_phone: "****5678".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(s.expire_codes(JobKind::CreateAccount).await.unwrap(), 1);
    let c = s.status(&child.id, false).await.unwrap();
    assert_eq!(c.state, JobState::Dead);
    let why = c.last_error.unwrap().message;
    assert!(why.contains("its parent expired"), "{why}");
}
