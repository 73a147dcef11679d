//! The queue store against a real redis-server: enqueue, idempotency, fetch/lease, acks,
//! retries and their limits, deferrals, quarantine, dependencies, codes, dead letters.

use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::*;
use onboard_shared::providers::Provider;
use onboard_shared::queue::keys::QueueKeys;
use onboard_shared::queue::*;
use onboard_shared::secret::Secret;
use onboard_shared::{events, ErrorClass};
use onboard_tests::RedisServer;
use redis::Commands;

async fn store(redis: &RedisServer) -> JobStore {
    store_with(redis, |_| {}).await
}

/// The tests' store, with `adjust` applied to its configuration.
async fn store_with(redis: &RedisServer, adjust: impl FnOnce(&mut Config)) -> JobStore {
    let mut cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    cfg.queue.lease_ms = 2_000;
    cfg.queue.max_attempts.create_customer = 3;
    adjust(&mut cfg);
    JobStore::connect(&cfg).await.expect("connect")
}

/// Enqueues create-customer `c1` with default options.
async fn enqueue_c1(s: &JobStore) -> Enqueued {
    s.enqueue(&customer("c1"), &Default::default())
        .await
        .unwrap()
}

fn customer(id: &str) -> Job {
    Job::CreateCustomer(CreateCustomerJob {
        customer_id: id.into(),
        country_code: "86".into(),
        phone_number: "13900000000".into(),
    })
}

fn bind(id: &str) -> Job {
    Job::BindDevices(BindDevicesJob {
        customer_id: id.into(),
        devices: vec![DeviceInfo {
            customer_device_no: "1".into(),
            device_id: "P1/d1".into(),
            product_name: "lamp".into(),
        }],
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

fn err(code: &str) -> ErrorRecord {
    ErrorRecord::new(ErrorClass::Transient, code, "boom")
}

#[tokio::test]
async fn enqueue_is_fifo_and_idempotent() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let opts = EnqueueOptions {
        idempotency_key: Some("c1".into()),
        ..Default::default()
    };
    let first = s.enqueue(&customer("c1"), &opts).await.unwrap();
    let again = s.enqueue(&customer("c1"), &opts).await.unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.id, first.id, "a duplicate returns the FIRST job's id");
    let second = s
        .enqueue(&customer("c2"), &Default::default())
        .await
        .unwrap();

    let got = s.fetch(JobKind::CreateCustomer, 10, "t").await.unwrap();
    let ids: Vec<_> = got.jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, vec![first.id.clone(), second.id.clone()]);
    assert_eq!(got.jobs[0].attempt, 1);
    assert_eq!(got.jobs[0].job, customer("c1"));
    assert_eq!(
        s.status(&first.id, false).await.unwrap().state,
        JobState::Running
    );
}

#[tokio::test]
async fn bulk_enqueue_keeps_idempotency_and_status_before_first_claim() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let keyed = |id: &str| {
        (
            customer(id),
            EnqueueOptions {
                idempotency_key: Some(id.into()),
                ..Default::default()
            },
        )
    };
    // A fresh batch (all keys claimed at once), with a key repeated inside it.
    let first = s
        .enqueue_many(&[keyed("a"), keyed("b"), keyed("a")])
        .await
        .unwrap();
    assert!(!first[0].duplicate && !first[1].duplicate);
    assert!(first[2].duplicate, "a key twice in one call enqueues once");
    assert_eq!(first[2].id, first[0].id);
    // A rerun mixing taken and new keys: only the new one is enqueued.
    let again = s
        .enqueue_many(&[keyed("b"), keyed("c"), keyed("a")])
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|e| e.duplicate).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(again[0].id, first[1].id);
    assert_eq!(again[2].id, first[0].id);

    // Not claimed yet: status still knows the job.
    let before = s.status(&first[0].id, false).await.unwrap();
    assert_eq!(before.state, JobState::Queued);
    assert_eq!((before.attempts, before.max_attempts), (0, 3));
    assert!(before.created_ms > 0);
    let stats = s.queue_stats(JobKind::CreateCustomer).await.unwrap();
    assert_eq!(stats.queued, 3);
    assert_eq!(stats.enqueued_total, 3);

    // Claimed in FIFO order with their own record.
    let got = s.fetch(JobKind::CreateCustomer, 10, "t").await.unwrap();
    let ids: Vec<_> = got.jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, [first[0].id.as_str(), &first[1].id, &again[1].id]);
    assert_eq!(got.jobs[1].job, customer("b"));
    let after = s.status(&first[0].id, false).await.unwrap();
    assert_eq!(after.state, JobState::Running);
    assert_eq!((after.attempts, after.max_attempts), (1, 3));
    assert_eq!(after.created_ms, before.created_ms);
}

#[tokio::test]
async fn an_id_listed_twice_is_claimed_once() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let e = enqueue_c1(&s).await;
    let mut conn = redis.connection();
    onboard_tests::push_ready(&mut conn, JobKind::CreateCustomer, &e.id);
    let got = s.fetch(JobKind::CreateCustomer, 10, "t").await.unwrap();
    assert_eq!(got.jobs.len(), 1, "one claim, one lease");
    assert_eq!(got.jobs[0].id, e.id);
}

#[tokio::test]
async fn the_events_stream_stays_near_its_cap() {
    let redis = RedisServer::start();
    let s = store_with(&redis, |cfg| cfg.queue.events_maxlen = 200).await;
    let jobs: Vec<_> = (0..3_000)
        .map(|i| (customer(&format!("c{i}")), EnqueueOptions::default()))
        .collect();
    s.enqueue_many(&jobs).await.unwrap();
    let mut conn = redis.connection();
    let stream = events::stream_key(Provider::Iot, redis.is_cluster());
    // Approximate trimming (`MAXLEN ~`) drops whole stream nodes of 100 entries, so the
    // stream may run one node over its cap, never thousands.
    let after_enqueue: usize = conn.xlen(&stream).unwrap();
    assert!((200..=300).contains(&after_enqueue), "{after_enqueue}");
    let got = s.fetch(JobKind::CreateCustomer, 1_000, "t").await.unwrap();
    assert_eq!(got.jobs.len(), 1_000);
    let after_fetch: usize = conn.xlen(&stream).unwrap();
    assert!((200..=300).contains(&after_fetch), "{after_fetch}");
}

#[tokio::test]
async fn payloads_are_encrypted_at_rest() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let job = Job::RegisterUser(RegisterUserJob {
        email: "alice@example.com".into(),
        mobile: "13900001111".into(),
        passwd: Secret::new("pa55word-XYZ"),
        name: None,
        industry: None,
        sale_id: None,
    });
    let e = s.enqueue(&job, &Default::default()).await.unwrap();
    let mut conn = redis.connection();
    // Until a worker claims it, the job waits in the queue's pending hash...
    let pending: Vec<u8> = conn
        .hget(QueueKeys::new(JobKind::RegisterUser).pending(), &e.id)
        .unwrap();
    assert_clear_text_absent(&pending);
    // ...and once claimed, in its own record.
    let claimed = s.fetch(JobKind::RegisterUser, 1, "t").await.unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let payload: Vec<u8> = conn
        .hget(QueueKeys::new(JobKind::RegisterUser).job(&e.id), "payload")
        .unwrap();
    assert_clear_text_absent(&payload);
}

fn assert_clear_text_absent(stored: &[u8]) {
    assert!(!stored.is_empty());
    let text = String::from_utf8_lossy(stored);
    assert!(!text.contains("pa55word"), "password stored in clear");
    assert!(!text.contains("alice"), "e-mail stored in clear");
}

/// Redis's clock, in Unix milliseconds.
fn redis_now_ms(conn: &mut impl redis::ConnectionLike) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(conn).unwrap();
    secs * 1000 + micros / 1000
}

/// Returns once Redis's clock reads `at_ms` or later.
fn await_redis_clock(conn: &mut impl redis::ConnectionLike, at_ms: u64) {
    while redis_now_ms(conn) < at_ms {
        std::thread::yield_now();
    }
}

/// A claimed job says how long it waited since its enqueue, on Redis's clock: a fresh job
/// (from its pending entry) and a retried one (from its record) alike.
#[tokio::test]
async fn a_claimed_job_tells_how_long_it_waited_since_its_enqueue() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let mut conn = redis.connection();
    let e = enqueue_c1(&s).await;
    let created = s.status(&e.id, false).await.unwrap().created_ms;
    for attempt in 1..=2u32 {
        let waited_at_least = 40 * u64::from(attempt);
        await_redis_clock(&mut conn, created + waited_at_least);
        let got = s.fetch(JobKind::CreateCustomer, 1, "t").await.unwrap();
        let claimed_by = redis_now_ms(&mut conn);
        let j = &got.jobs[0];
        assert_eq!(j.attempt, attempt);
        assert!(
            (waited_at_least..=claimed_by - created).contains(&j.waited_ms),
            "attempt {attempt} waited {} ms, between {waited_at_least} and {}",
            j.waited_ms,
            claimed_by - created
        );
        let retry = Ack::Retry {
            delay_ms: 0,
            error: err("InternalError"),
            uncertain: false,
        };
        s.ack(JobKind::CreateCustomer, &j.id, &j.token, &retry)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn retries_count_attempts_and_end_dead() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let e = enqueue_c1(&s).await;
    for attempt in 1..=3u32 {
        let got = s.fetch(JobKind::CreateCustomer, 1, "t").await.unwrap();
        assert_eq!(got.jobs.len(), 1, "attempt {attempt} is handed out");
        let j = &got.jobs[0];
        assert_eq!(j.attempt, attempt);
        let st = s
            .ack(
                JobKind::CreateCustomer,
                &j.id,
                &j.token,
                &Ack::Retry {
                    delay_ms: 0,
                    error: err("InternalError"),
                    uncertain: false,
                },
            )
            .await
            .unwrap();
        if attempt < 3 {
            assert_eq!(st, AckStatus::Retry);
        } else {
            assert_eq!(st, AckStatus::Dead, "max attempts (3) reached");
        }
    }
    let status = s.status(&e.id, false).await.unwrap();
    assert_eq!(status.state, JobState::Dead);
    let last = status.last_error.unwrap();
    assert_eq!(last.code, "InternalError");
    assert!(
        last.message.contains("attempts used up"),
        "{}",
        last.message
    );
    let dead = s.dead_letters(JobKind::CreateCustomer, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
}

#[tokio::test]
async fn throttling_uses_no_attempt() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let e = enqueue_c1(&s).await;
    for _ in 0..5 {
        let got = s.fetch(JobKind::CreateCustomer, 1, "t").await.unwrap();
        let j = &got.jobs[0];
        assert_eq!(j.attempt, 1, "deferrals never use up an attempt");
        let st = s
            .ack(
                JobKind::CreateCustomer,
                &j.id,
                &j.token,
                &Ack::Defer {
                    delay_ms: 0,
                    error: err("RequestLimitExceeded"),
                },
            )
            .await
            .unwrap();
        assert_eq!(st, AckStatus::Deferred);
    }
    let status = s.status(&e.id, false).await.unwrap();
    assert_eq!(status.throttles, 5);
    assert_eq!(status.attempts, 0);
}

#[tokio::test]
async fn expired_lease_is_handed_out_again_and_stale_ack_is_refused() {
    let redis = RedisServer::start();
    let s = store(&redis).await; // lease 2 s
    let e = enqueue_c1(&s).await;
    let first = s
        .fetch(JobKind::CreateCustomer, 1, "a")
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert!(s
        .fetch(JobKind::CreateCustomer, 1, "b")
        .await
        .unwrap()
        .jobs
        .is_empty());
    // Make the lease lapse now rather than sleeping through it.
    let mut conn = redis.connection();
    let _: () = conn
        .zadd(QueueKeys::new(JobKind::CreateCustomer).leased(), &e.id, 1)
        .unwrap();
    let second = s
        .fetch(JobKind::CreateCustomer, 1, "b")
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert_eq!(second.id, e.id);
    assert!(second.uncertain, "a lapsed lease leaves the effect unknown");
    assert_eq!(second.attempt, 2);
    let stale = s
        .ack(
            JobKind::CreateCustomer,
            &first.id,
            &first.token,
            &Ack::Succeeded(serde_json::json!({})),
        )
        .await
        .unwrap();
    assert_eq!(
        stale,
        AckStatus::Stale,
        "the old holder cannot record an outcome"
    );
    assert!(s
        .renew(JobKind::CreateCustomer, &second.id, &second.token)
        .await
        .unwrap());
    assert!(!s
        .renew(JobKind::CreateCustomer, &first.id, &first.token)
        .await
        .unwrap());
    // The holder's success settles what was unknown: the record says so.
    let done = s
        .ack(
            JobKind::CreateCustomer,
            &second.id,
            &second.token,
            &Ack::Succeeded(serde_json::json!({})),
        )
        .await
        .unwrap();
    assert_eq!(done, AckStatus::Succeeded);
    let status = s.status(&e.id, false).await.unwrap();
    assert_eq!(status.state, JobState::Succeeded);
    assert!(!status.uncertain, "a success leaves nothing uncertain");
}

#[tokio::test]
async fn garbage_is_quarantined_and_others_flow() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let mut conn = redis.connection();
    // A record whose payload is garbage, and an id with no record at all.
    let _: () = conn
        .hset_multiple(
            QueueKeys::new(JobKind::CreateCustomer).job("cust_GARBAGE"),
            &[
                ("state", "queued"),
                ("payload", "not encrypted json"),
                ("attempts", "0"),
                ("max_attempts", "3"),
            ],
        )
        .unwrap();
    onboard_tests::push_ready(&mut conn, JobKind::CreateCustomer, "cust_GARBAGE");
    onboard_tests::push_ready(&mut conn, JobKind::CreateCustomer, "cust_NORECORD");
    // A pending entry (bulk enqueue's form of a queued job) that is not in its format.
    let _: () = conn
        .hset(
            QueueKeys::new(JobKind::CreateCustomer).pending(),
            "cust_BADPENDING",
            "no separators",
        )
        .unwrap();
    onboard_tests::push_ready(&mut conn, JobKind::CreateCustomer, "cust_BADPENDING");
    let good = enqueue_c1(&s).await;
    let got = s.fetch(JobKind::CreateCustomer, 10, "t").await.unwrap();
    assert_eq!(got.jobs.len(), 1);
    assert_eq!(got.jobs[0].id, good.id);
    assert_eq!(got.quarantined, 2);
    let bad_pending = s.status("cust_BADPENDING", false).await.unwrap();
    assert_eq!(bad_pending.state, JobState::Dead);
    assert_eq!(
        bad_pending.last_error.unwrap().class,
        ErrorClass::Undecodable
    );
    let garbage = s.status("cust_GARBAGE", false).await.unwrap();
    assert_eq!(garbage.state, JobState::Dead);
    assert_eq!(garbage.last_error.unwrap().class, ErrorClass::Undecodable);
    assert_eq!(
        s.status("cust_NORECORD", false).await.unwrap().state,
        JobState::Dead
    );
}

#[tokio::test]
async fn successes_recorded_in_one_batch_each_get_their_own_status() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let jobs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|c| (customer(c), EnqueueOptions::default()))
        .collect();
    let parents = s.enqueue_many(&jobs).await.unwrap();
    let child = s
        .enqueue(
            &bind("b"),
            &EnqueueOptions {
                depends_on: Some(parents[1].id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got = s.fetch(JobKind::CreateCustomer, 3, "t").await.unwrap().jobs;
    assert_eq!(got.len(), 3);
    let result = serde_json::json!({"status": "OK"});
    let batch: Vec<(&str, &str, &serde_json::Value)> = vec![
        (&got[0].id, &got[0].token, &result),
        (&got[1].id, &got[1].token, &result),
        // A lease token that is not (or no longer) the job's: refused, the others recorded.
        (&got[2].id, "t:lost", &result),
    ];
    let statuses = s
        .ack_succeeded(JobKind::CreateCustomer, &batch)
        .await
        .unwrap();
    assert_eq!(
        statuses,
        [AckStatus::Succeeded, AckStatus::Succeeded, AckStatus::Stale]
    );
    for (job, state) in
        got.iter()
            .zip([JobState::Succeeded, JobState::Succeeded, JobState::Running])
    {
        assert_eq!(
            s.status(&job.id, false).await.unwrap().state,
            state,
            "{}",
            job.id
        );
    }
    assert_eq!(
        s.status(&child.id, false).await.unwrap().state,
        JobState::Queued,
        "the dependent of a job in the batch is released"
    );
    let stats = s.stats().await.unwrap();
    let customers = stats
        .iter()
        .find(|q| q.kind == JobKind::CreateCustomer)
        .unwrap();
    assert_eq!(Some(customers.succeeded_total), Some(2));
    assert_eq!(
        Some(customers.running),
        Some(1),
        "the refused job keeps its lease"
    );
}

#[tokio::test]
async fn dependents_wait_then_run_or_die_with_their_parent() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let parent = enqueue_c1(&s).await;
    let child = s
        .enqueue(
            &bind("c1"),
            &EnqueueOptions {
                depends_on: Some(parent.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        s.status(&child.id, false).await.unwrap().state,
        JobState::Waiting
    );
    assert!(s
        .fetch(JobKind::BindDevices, 10, "t")
        .await
        .unwrap()
        .jobs
        .is_empty());
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
        &Ack::Succeeded(serde_json::json!({"status": "OK"})),
    )
    .await
    .unwrap();
    assert_eq!(
        s.status(&child.id, false).await.unwrap().state,
        JobState::Queued
    );

    // A failing parent kills its child with "dependency failed"; retrying both revives it.
    let parent2 = s
        .enqueue(&customer("c2"), &Default::default())
        .await
        .unwrap();
    let child2 = s
        .enqueue(
            &bind("c2"),
            &EnqueueOptions {
                depends_on: Some(parent2.id.clone()),
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
        &Ack::Dead(err("invalid Phone")),
    )
    .await
    .unwrap();
    let c = s.status(&child2.id, false).await.unwrap();
    assert_eq!(c.state, JobState::Dead);
    assert!(c.last_error.unwrap().message.contains("dependency failed"));
    assert_eq!(s.retry_dead(&child2.id).await.unwrap(), JobState::Waiting);
    // Parent still dead: the child is dead again at once.
    assert_eq!(
        s.status(&child2.id, false).await.unwrap().state,
        JobState::Dead
    );
    assert_eq!(s.retry_dead(&parent2.id).await.unwrap(), JobState::Queued);
    assert_eq!(s.retry_dead(&child2.id).await.unwrap(), JobState::Waiting);
    assert_eq!(
        s.status(&child2.id, false).await.unwrap().state,
        JobState::Waiting
    );
    let err = s.retry_dead(&parent2.id).await.unwrap_err();
    assert!(err.to_string().contains("is queued"), "{err}");
}

#[tokio::test]
async fn verify_code_resumes_once() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let e = s.enqueue(&account(), &Default::default()).await.unwrap();
    let j = s
        .fetch(JobKind::CreateAccount, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert_eq!(j.phase, CodePhase::Send);
    s.ack(
        JobKind::CreateAccount,
        &j.id,
        &j.token,
        &Ack::AwaitCode {
            code_lifetime_ms: 60_000,
            masked_phone: "****5678".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.status(&e.id, false).await.unwrap().state,
        JobState::AwaitingCode
    );
    assert!(matches!(
        s.supply_code(&e.id, &Secret::new("12a456")).await,
        Err(QueueError::BadCode)
    ));
    s.supply_code(&e.id, &Secret::new("654321")).await.unwrap();
    let again = s
        .supply_code(&e.id, &Secret::new("654321"))
        .await
        .unwrap_err();
    assert!(again.to_string().contains("is queued"), "{again}");
    let j = s
        .fetch(JobKind::CreateAccount, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert_eq!(j.phase, CodePhase::Verify);
    assert_eq!(j.verify_code.unwrap().expose(), "654321");
}

#[tokio::test]
async fn a_code_supplied_while_phase_one_finishes_is_used_when_it_ends() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let e = s.enqueue(&account(), &Default::default()).await.unwrap();
    let j = s
        .fetch(JobKind::CreateAccount, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert_eq!(j.phase, CodePhase::Send);
    // Phase 1 is running: the provider may have texted already. The code is kept...
    s.supply_code(&e.id, &Secret::new("112233")).await.unwrap();
    // ...once: a second code before it is used is refused, naming the state.
    let again = s
        .supply_code(&e.id, &Secret::new("445566"))
        .await
        .unwrap_err();
    assert!(
        again
            .to_string()
            .contains("running, with a code already waiting"),
        "{again}"
    );
    // Phase 1 ends: the job goes straight on with the early code, no awaiting_code.
    s.ack(
        JobKind::CreateAccount,
        &j.id,
        &j.token,
        &Ack::AwaitCode {
            code_lifetime_ms: 60_000,
            masked_phone: "****5678".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.status(&e.id, false).await.unwrap().state,
        JobState::Queued
    );
    let j = s
        .fetch(JobKind::CreateAccount, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert_eq!(j.phase, CodePhase::Verify);
    assert_eq!(j.verify_code.unwrap().expose(), "112233");
}
