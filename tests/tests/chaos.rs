//! Chaos: workers killed with SIGKILL, Redis restarted, providers failing, timing out and
//! throttling, in the middle of real runs. Nothing may be lost, nothing created twice at a
//! provider, no job may use more attempts than allowed, and throttling may use none.

use onboard_producer::{Event, EventFollower};
use onboard_shared::queue::*;
use onboard_shared::ErrorClass;
use onboard_tests::fixtures::*;
use onboard_tests::scrape::{scrape, sum};
use onboard_tests::{wait_all, RedisServer, Sandbox, Worker, WorkerOptions};
use rand::{Rng, SeedableRng};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_three_times_in_a_10k_mixed_run() {
    let seed: u64 = rand::random();
    eprintln!("kill moments seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({"seed": 1, "latency_ms": 20}));
    let opts = quick()
        .env("ONBOARD_QUEUE__LEASE_MS", 1_500)
        .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 100)
        .env("ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER", 100)
        .env("ONBOARD_QUEUE__CONCURRENCY__BIND_DEVICES", 100);
    let p = producer(&redis).await;
    let (customers, others) = enqueue_mixed(&p, 4_000, 4_000, 2_000).await;
    let mut worker = Worker::start(&redis, &sandbox, opts.clone());
    // Three random moments, each "once the customer at this position finished" (customers
    // run in FIFO order), between 10 % and 80 % of the way.
    let mut moments: Vec<usize> = (0..3).map(|_| rng.gen_range(400..3_200)).collect();
    moments.sort_unstable();
    for at in moments {
        wait_all(&p, &customers[at..=at], Duration::from_secs(120)).await;
        worker.kill9();
        worker = Worker::start(&redis, &sandbox, opts.clone());
    }
    let all: Vec<String> = customers.iter().chain(&others).cloned().collect();
    all_succeeded_each_created_once(&p, &all, &sandbox, 4_000, 4_000).await;
    let expired = leases_expired(&p).await;
    assert!(
        expired > 0,
        "the kills left leases to expire, and they were recovered"
    );
}

/// Two workers claiming ahead of their slots (`queue.prefetch`), one killed with SIGKILL
/// mid-run: the jobs it held, running or waiting ahead, come back when their leases expire,
/// and every customer is created exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_jobs_claimed_ahead_creates_none_twice() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({"seed": 1, "latency_ms": 20}));
    let opts = quick()
        .env("ONBOARD_QUEUE__LEASE_MS", 1_500)
        .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 20)
        .env("ONBOARD_QUEUE__CONCURRENCY__BIND_DEVICES", 0)
        .env("ONBOARD_QUEUE__PREFETCH", 40);
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..3_000).map(customer).collect()).await;
    let mut doomed = Worker::start(&redis, &sandbox, opts.clone());
    let _survivor = Worker::start(&redis, &sandbox, opts.clone());
    wait_all(&p, &ids[600..=600], Duration::from_secs(120)).await;
    doomed.kill9();
    all_succeeded_each_created_once(&p, &ids, &sandbox, 3_000, 0).await;
    let expired = leases_expired(&p).await;
    assert!(
        expired > 0,
        "the killed worker's leases expired and were recovered"
    );
    let attempts_over: Vec<_> = wait_all(&p, &ids, Duration::from_secs(10))
        .await
        .into_iter()
        .filter(|s| s.attempts > 2)
        .collect();
    assert!(
        attempts_over.is_empty(),
        "a job ran more than twice: {:?}",
        attempts_over.first()
    );
}

/// Leases expired and recovered, over every queue.
async fn leases_expired(p: &onboard_producer::Producer) -> u64 {
    p.stats()
        .await
        .unwrap()
        .iter()
        .map(|q| q.leases_expired)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_twice_loses_no_acknowledged_job() {
    let mut redis = RedisServer::start_with(true);
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({"seed": 1, "latency_ms": 20}));
    let _worker = Worker::start(
        &redis,
        &sandbox,
        quick().env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 20),
    );
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..2_000).map(customer).collect()).await;
    let mut acknowledged: Vec<String> = Vec::new();
    for at in [200, 1_000] {
        wait_all(&p, &ids[at..=at], Duration::from_secs(60)).await;
        for id in &ids {
            if p.status(id, false).await.unwrap().state == JobState::Succeeded {
                acknowledged.push(id.clone());
            }
        }
        redis.restart();
    }
    // Nobody touched the worker: it reconnected by itself.
    let p = producer(&redis).await;
    for id in &acknowledged {
        assert_eq!(
            p.status(id, false).await.unwrap().state,
            JobState::Succeeded,
            "{id} was lost"
        );
    }
    let done = wait_all(&p, &ids, Duration::from_secs(180)).await;
    assert!(
        done.iter().all(|s| s.state == JobState::Succeeded),
        "every job survives"
    );
    assert_eq!(sandbox.stats()["duplicates"], 0);
}

/// Follows the events stream until `count` events have matched `wanted` (two minutes at most).
async fn until_events(events: &mut EventFollower, count: usize, wanted: impl Fn(&Event) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while seen < count {
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen} of {count} awaited events in two minutes"
        );
        let batch = events
            .next_batch(Duration::from_secs(1))
            .await
            .expect("events");
        seen += batch.iter().filter(|e| wanted(e)).count();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_faults_timeouts_and_throttle_storms() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let faults = |throttle: f64| {
        serde_json::json!({
            "seed": 5, "error_rate": 0.2, "timeout_rate": 0.05, "hang_ms": 1_500,
            "throttle_rate": throttle,
        })
    };
    sandbox.set_faults(faults(0.0));
    let worker = Worker::start(
        &redis,
        &sandbox,
        quick()
            .env("ONBOARD_HTTP_TIMEOUT_MS", 500)
            .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 20)
            .env("ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER", 20),
    );
    let p = producer(&redis).await;
    let mut events = EventFollower::from_now(p.store()).await.expect("events");
    let (customers, others) = enqueue_mixed(&p, 300, 300, 150).await;
    // A throttle storm in the middle of the run: it starts once 100 jobs have succeeded
    // (so most of the run is still to come) and ends once it has throttled 20 attempts.
    // Waiting on events rather than on particular jobs: a job that happens to retry late
    // would otherwise open the storm after the run is over.
    until_events(&mut events, 100, |e| {
        e.state.job_state() == Some(JobState::Succeeded)
    })
    .await;
    sandbox.set_faults(faults(0.5));
    until_events(&mut events, 20, |e| {
        e.state.job_state() == Some(JobState::RetryScheduled)
            && e.error
                .as_ref()
                .is_some_and(|r| r.class == ErrorClass::Throttled)
    })
    .await;
    sandbox.set_faults(faults(0.0));

    let all: Vec<String> = customers.iter().chain(&others).cloned().collect();
    let done = wait_all(&p, &all, Duration::from_secs(300)).await;
    for s in &done {
        assert!(
            s.state == JobState::Succeeded || (s.state == JobState::Dead && s.last_error.is_some()),
            "every job ends succeeded, or dead with a reason: {s:?}"
        );
        assert!(s.attempts <= s.max_attempts, "{s:?}");
    }
    let throttles: u32 = done.iter().map(|s| s.throttles).sum();
    assert!(throttles > 0, "the storm throttled some jobs");

    // Throttling used no attempts: every attempt the worker ran, less the throttled ones,
    // is an attempt some job counted.
    let m = scrape(worker.metrics_url());
    let ran = sum(&m, "onboard_job_attempts_total", &[]);
    let throttled = sum(&m, "onboard_job_attempts_total", &[("result", "throttled")]);
    let unknown = sum(
        &m,
        "onboard_job_attempts_total",
        &[("result", "outcome_unknown")],
    );
    let counted: u32 = done.iter().map(|s| s.attempts).sum();
    assert!(
        unknown > 0.0,
        "some answers were lost after the provider acted"
    );
    assert_eq!(ran - throttled, f64::from(counted));

    let stats = sandbox.stats();
    assert_eq!(stats["duplicates"], 0, "no create twice: {stats}");
    let created_customers = stats["creates"]["customers"]
        .as_object()
        .map_or(0, |m| m.len());
    let ok_customers = done[..300]
        .iter()
        .filter(|s| s.state == JobState::Succeeded)
        .count();
    assert_eq!(created_customers, ok_customers);
    for (_, count) in stats["creates"]["customers"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert_eq!(count, 1);
    }
}

/// One clock: workers whose clocks run 30 s ahead and 30 s behind, beside a correct one,
/// neither take each other's leases (no job runs twice, nothing is created twice) nor take
/// more than the provider's limit.
#[tokio::test(flavor = "multi_thread")]
async fn skewed_clocks_steal_no_lease_and_keep_the_limit() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    sandbox.set_faults(serde_json::json!({"seed": 3, "latency_ms": 30}));
    let opts = WorkerOptions::default()
        .env("ONBOARD_QUEUE__LEASE_MS", 3_000)
        .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 10)
        .env("ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER", 10);
    let _workers: Vec<Worker> = [None, Some("+30s"), Some("-30s")]
        .into_iter()
        .map(|offset| {
            let opts = match offset {
                Some(o) => opts.clone().clock_offset(o),
                None => opts.clone(),
            };
            Worker::start(&redis, &sandbox, opts)
        })
        .collect();
    let p = producer(&redis).await;
    let mut ids = enqueue_all(&p, (0..120).map(customer).collect()).await;
    ids.extend(enqueue_all(&p, (0..120).map(user).collect()).await);
    let done = wait_all(&p, &ids, Duration::from_secs(120)).await;
    for s in &done {
        assert_eq!(s.state, JobState::Succeeded, "{s:?}");
        assert_eq!(s.attempts, 1, "no job ran twice: {s:?}");
        assert!(!s.uncertain, "no lease was taken over: {s:?}");
    }
    let stats = sandbox.stats();
    assert_eq!(stats["duplicates"], 0, "{stats}");
    for action in ["ServiceCreateCustomer", "add-custom-user"] {
        assert_eq!(
            stats["actions"][action]["rate_limit_violations"], 0,
            "{action}: {stats}"
        );
    }
    let iot_peak = stats["actions"]["ServiceCreateCustomer"]["max_per_second"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(iot_peak <= 20, "IoT's 20/s held: {iot_peak}");
}

/// Everything at once, in one 10,000-job mixed run: poison records among the jobs, a worker
/// whose clock runs 20 s ahead beside a correct one, a kill -9, a Redis restart and a
/// throttle storm. Every good job ends terminal, nothing is created twice, every poison
/// record is dead with its reason, and no job used more attempts than allowed.
#[tokio::test(flavor = "multi_thread")]
async fn everything_at_once() {
    let mut redis = RedisServer::start_with(true);
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let faults = |throttle: f64| {
        serde_json::json!({"seed": 9, "latency_ms": 5, "error_rate": 0.03,
            "timeout_rate": 0.01, "hang_ms": 1_000, "throttle_rate": throttle})
    };
    sandbox.set_faults(faults(0.0));
    let opts = quick()
        .env("ONBOARD_HTTP_TIMEOUT_MS", 500)
        .env("ONBOARD_QUEUE__LEASE_MS", 2_000)
        .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 50)
        .env("ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER", 50)
        .env("ONBOARD_QUEUE__CONCURRENCY__BIND_DEVICES", 50);
    let p = producer(&redis).await;
    let mut events = EventFollower::from_now(p.store()).await.expect("events");
    let (customers, others) = enqueue_mixed(&p, 4_000, 4_000, 2_000).await;
    let poison = inject_poison(&redis);
    let mut plain = Worker::start(&redis, &sandbox, opts.clone());
    let _ahead = Worker::start(&redis, &sandbox, opts.clone().clock_offset("+20s"));

    until_events(&mut events, 1_500, |e| {
        e.state.job_state() == Some(JobState::Succeeded)
    })
    .await;
    plain.kill9();
    let _plain = Worker::start(&redis, &sandbox, opts.clone());
    until_events(&mut events, 1_500, |e| {
        e.state.job_state() == Some(JobState::Succeeded)
    })
    .await;
    redis.restart();
    let mut events = EventFollower::from_now(p.store()).await.expect("events");
    until_events(&mut events, 1_000, |e| {
        e.state.job_state() == Some(JobState::Succeeded)
    })
    .await;
    sandbox.set_faults(faults(0.5));
    until_events(&mut events, 20, |e| {
        e.state.job_state() == Some(JobState::RetryScheduled)
            && e.error
                .as_ref()
                .is_some_and(|r| r.class == ErrorClass::Throttled)
    })
    .await;
    sandbox.set_faults(faults(0.0));

    let all: Vec<String> = customers.iter().chain(&others).cloned().collect();
    let done = wait_all(&p, &all, Duration::from_secs(300)).await;
    for s in &done {
        assert!(
            s.state == JobState::Succeeded || (s.state == JobState::Dead && s.last_error.is_some()),
            "every good job ends succeeded, or dead with a reason: {s:?}"
        );
        assert!(s.attempts <= s.max_attempts, "{s:?}");
    }
    let ok = done
        .iter()
        .filter(|s| s.state == JobState::Succeeded)
        .count();
    assert!(ok > 9_900, "only {ok} of 10,000 succeeded");
    let stats = sandbox.stats();
    assert_eq!(stats["duplicates"], 0, "nothing created twice: {stats}");
    for (id, reason) in poison {
        let s = p.status(&id, false).await.unwrap();
        assert_eq!(s.state, JobState::Dead, "{id}");
        let why = s.last_error.unwrap().message;
        assert!(why.contains(reason), "{id}: {why}");
    }
}

/// Malformed records among the create-customer jobs: ids and the reason each must end with.
fn inject_poison(redis: &RedisServer) -> Vec<(String, &'static str)> {
    use onboard_shared::queue::keys::QueueKeys;
    use redis::Commands;
    let keys = QueueKeys::new(onboard_shared::jobs::JobKind::CreateCustomer);
    let mut conn = redis.connection();
    let mut poison = Vec::new();
    for (i, (field, value)) in [("attempts", "many"), ("max_attempts", "-")]
        .into_iter()
        .enumerate()
    {
        let id = format!("cust_01POISONFIELD{i}");
        let _: () = conn
            .hset_multiple(
                keys.job(&id),
                &[
                    ("state", "queued"),
                    ("payload", "x"),
                    ("attempts", "0"),
                    ("max_attempts", "3"),
                    (field, value),
                ],
            )
            .unwrap();
        onboard_tests::push_ready(
            &mut conn,
            onboard_shared::jobs::JobKind::CreateCustomer,
            &id,
        );
        poison.push((id, "is not a whole number"));
    }
    let wrong_type = "cust_01POISONTYPE".to_string();
    let _: () = conn.set(keys.job(&wrong_type), "a string").unwrap();
    let _: () = conn.zadd(keys.scheduled(), &wrong_type, 1).unwrap();
    poison.push((wrong_type, "is a string, not a hash"));
    let no_record = "cust_01POISONNONE".to_string();
    onboard_tests::push_ready(
        &mut conn,
        onboard_shared::jobs::JobKind::CreateCustomer,
        &no_record,
    );
    poison.push((no_record, "which has no record"));
    let undecodable = "cust_01POISONPAYLOAD".to_string();
    let _: () = conn
        .hset_multiple(
            keys.job(&undecodable),
            &[
                ("state", "queued"),
                ("payload", "not encrypted"),
                ("attempts", "0"),
                ("max_attempts", "3"),
            ],
        )
        .unwrap();
    onboard_tests::push_ready(
        &mut conn,
        onboard_shared::jobs::JobKind::CreateCustomer,
        &undecodable,
    );
    poison.push((undecodable, "payload: not an encrypted value"));
    poison
}
