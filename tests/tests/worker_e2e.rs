//! The worker end to end: real redis-server, onboard-sandbox and onboard-worker processes.

use onboard_shared::jobs::*;
use onboard_shared::queue::keys::QueueKeys;
use onboard_shared::queue::*;
use onboard_shared::ErrorClass;
use onboard_tests::fixtures::*;
use onboard_tests::{wait_all, RedisServer, Sandbox, Worker, WorkerOptions};
use redis::Commands;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_succeeds_and_results_are_readable() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, WorkerOptions::default());
    let p = producer(&redis).await;
    let parent = p.enqueue(&customer(1), &Default::default()).await.unwrap();
    let child = p
        .enqueue(
            &bind(1),
            &EnqueueOptions {
                depends_on: Some(parent.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let u = p.enqueue(&user(1), &Default::default()).await.unwrap();
    let a = p.enqueue(&account(1), &Default::default()).await.unwrap();
    let ids = vec![
        parent.id.clone(),
        child.id.clone(),
        u.id.clone(),
        a.id.clone(),
    ];
    let done = wait_all(&p, &ids, Duration::from_secs(30)).await;
    assert_eq!(done[0].state, JobState::Succeeded);
    assert_eq!(
        done[1].state,
        JobState::Succeeded,
        "bind ran after its customer"
    );
    assert_eq!(done[2].state, JobState::Succeeded);
    assert_eq!(
        done[3].state,
        JobState::AwaitingCode,
        "phase 1 texted a code"
    );
    let hidden = p.status(&u.id, false).await.unwrap();
    assert_eq!(hidden.result.as_ref().unwrap()["app_secret"], "[redacted]");
    let shown = p.status(&u.id, true).await.unwrap();
    let secret = shown.result.unwrap()["app_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 8 && secret != "[redacted]");
    let stats = sandbox.stats();
    assert_eq!(stats["creates"]["customers"]["cust_1"], 1);
    assert_eq!(stats["creates"]["polyv_users"]["user1@example.com"], 1);
    assert!(
        sandbox.latest_code("85250000001").is_some(),
        "the sandbox texted a code"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_are_retried_until_success() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    sandbox.set_faults(serde_json::json!({"seed": 7, "error_rate": 0.4}));
    let _worker = Worker::start(&redis, &sandbox, quick());
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..60).map(customer).collect()).await;
    let done = wait_all(&p, &ids, Duration::from_secs(60)).await;
    assert!(
        done.iter().all(|s| s.state == JobState::Succeeded),
        "{:?}",
        done.iter().map(|s| s.state).collect::<Vec<_>>()
    );
    assert!(
        done.iter().any(|s| s.attempts > 1),
        "some jobs needed a retry"
    );
    assert_eq!(sandbox.stats()["duplicates"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_errors_end_dead_with_the_provider_code() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    let p = producer(&redis).await;
    // The same e-mail twice: POLYV refuses the second as a duplicate (a permanent 400).
    let first = p.enqueue(&user(5), &Default::default()).await.unwrap();
    wait_all(&p, std::slice::from_ref(&first.id), Duration::from_secs(20)).await;
    let second = p.enqueue(&user(5), &Default::default()).await.unwrap();
    let done = wait_all(
        &p,
        std::slice::from_ref(&second.id),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(done[0].state, JobState::Dead);
    assert_eq!(done[0].attempts, 1, "a permanent error is not retried");
    let err = done[0].last_error.clone().unwrap();
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.message.contains("email"), "{err:?}");
    let dead = p.dead_letters(JobKind::RegisterUser, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_uses_no_attempts() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    sandbox.set_faults(serde_json::json!({"seed": 3, "throttle_rate": 0.6}));
    let _worker = Worker::start(
        &redis,
        &sandbox,
        quick().env("ONBOARD_QUEUE__MAX_ATTEMPTS__CREATE_CUSTOMER", 1),
    );
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..30).map(customer).collect()).await;
    let done = wait_all(&p, &ids, Duration::from_secs(60)).await;
    assert!(
        done.iter().all(|s| s.state == JobState::Succeeded),
        "one attempt allowed, yet all succeed: throttling used none"
    );
    assert!(
        done.iter().map(|s| s.throttles).sum::<u32>() > 0,
        "the storm did throttle"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_enqueued_before_any_worker_is_all_processed() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let p = producer(&redis).await;
    const N: usize = 50_000;
    let mut ids = Vec::with_capacity(N);
    for chunk in (0..N).collect::<Vec<_>>().chunks(5_000) {
        ids.extend(enqueue_all(&p, chunk.iter().map(|i| customer(*i)).collect()).await);
    }
    let _worker = Worker::start(
        &redis,
        &sandbox,
        quick().env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 200),
    );
    // Wait on the last job enqueued (FIFO), then check them all.
    wait_all(&p, &ids[N - 1..], Duration::from_secs(300)).await;
    let done = wait_all(&p, &ids, Duration::from_secs(60)).await;
    assert_eq!(
        done.iter()
            .filter(|s| s.state == JobState::Succeeded)
            .count(),
        N
    );
    let stats = sandbox.stats();
    assert_eq!(stats["duplicates"], 0);
    assert_eq!(stats["creates"]["customers"].as_object().unwrap().len(), N);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_is_quarantined_while_jobs_flow() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    let mut conn = redis.connection();
    let _: () = conn
        .hset_multiple(
            QueueKeys::new(JobKind::CreateCustomer).job("cust_01GARBAGE"),
            &[
                ("state", "queued"),
                ("payload", "{not json"),
                ("attempts", "0"),
                ("max_attempts", "3"),
            ],
        )
        .unwrap();
    onboard_tests::push_ready(&mut conn, JobKind::CreateCustomer, "cust_01GARBAGE");
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..20).map(customer).collect()).await;
    let done = wait_all(&p, &ids, Duration::from_secs(30)).await;
    assert!(done.iter().all(|s| s.state == JobState::Succeeded));
    let garbage = p.status("cust_01GARBAGE", false).await.unwrap();
    assert_eq!(garbage.state, JobState::Dead);
    assert_eq!(garbage.last_error.unwrap().class, ErrorClass::Undecodable);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_leaves_no_job_leased() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({"seed": 1, "latency_ms": 300}));
    let mut worker = Worker::start(
        &redis,
        &sandbox,
        quick()
            .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 10)
            .env("ONBOARD_QUEUE__SHUTDOWN_GRACE_MS", 200),
    );
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..200).map(customer).collect()).await;
    wait_all(&p, &ids[..5], Duration::from_secs(30)).await;
    assert!(
        worker.terminate(Duration::from_secs(20)),
        "the worker exits cleanly on SIGTERM"
    );
    let mut conn = redis.connection();
    let leased: u64 = conn
        .zcard(QueueKeys::new(JobKind::CreateCustomer).leased())
        .unwrap();
    assert_eq!(leased, 0, "no job left leased");
    for id in &ids {
        let s = p.status(id, false).await.unwrap();
        assert!(
            matches!(s.state, JobState::Succeeded | JobState::Queued),
            "{id} is {}",
            s.state
        );
    }
    // The jobs handed back finish under a new worker.
    let _w = Worker::start(&redis, &sandbox, quick());
    let done = wait_all(&p, &ids, Duration::from_secs(60)).await;
    assert!(done.iter().all(|s| s.state == JobState::Succeeded));
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_share_the_create_account_limit() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let opts = WorkerOptions::default().env("ONBOARD_QUEUE__CONCURRENCY__CREATE_ACCOUNT", 10);
    let _w: Vec<Worker> = (0..3)
        .map(|_| Worker::start(&redis, &sandbox, opts.clone()))
        .collect();
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..30).map(account).collect()).await;
    let done = wait_all(&p, &ids, Duration::from_secs(60)).await;
    assert!(done.iter().all(|s| s.state == JobState::AwaitingCode));
    let stats = sandbox.stats();
    assert_eq!(
        stats["actions"]["CreateAccount"]["rate_limit_violations"], 0,
        "{stats}"
    );
    assert!(
        stats["actions"]["CreateAccount"]["max_per_second"]
            .as_u64()
            .unwrap()
            <= 5
    );
}

/// Requests that reach the provider unevenly late (here up to 50 ms) still count in their own
/// second: each second's request slots end `SECOND_GUARD` (100 ms) before it, and a worker
/// woken more than `SEND_LATENESS` (25 ms) late asks for a new slot. With the guard at 20 ms
/// the last slots of a busy second, delayed more than the first of the next, landed in it
/// (101 POLYV requests in one second in CI's skewed-clocks chaos test).
#[tokio::test(flavor = "multi_thread")]
async fn requests_unevenly_slow_to_reach_the_provider_still_count_in_their_own_second() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    sandbox.set_faults(serde_json::json!({"seed": 5, "transit_jitter_ms": 50}));
    let opts = WorkerOptions::default().env("ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER", 50);
    let _w = Worker::start(&redis, &sandbox, opts);
    let p = producer(&redis).await;
    // Seven busy seconds at POLYV's 100/s.
    let ids = enqueue_all(&p, (0..800).map(user).collect()).await;
    let done = wait_all(&p, &ids, Duration::from_secs(60)).await;
    assert!(done.iter().all(|s| s.state == JobState::Succeeded));
    let stats = sandbox.stats();
    let polyv = &stats["actions"]["add-custom-user"];
    assert_eq!(polyv["rate_limit_violations"], 0, "{stats}");
    assert_eq!(
        polyv["max_per_second"], 100,
        "the limit was used, not exceeded: {stats}"
    );
}

/// Finding 7: once SIGTERM arrives the worker claims nothing more, so no job is handed back
/// marked uncertain although it never ran (an uncertain create reconciles for nothing).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_claims_nothing_more_and_marks_nothing_uncertain() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({"seed": 1, "latency_ms": 300}));
    let mut worker = Worker::start(
        &redis,
        &sandbox,
        quick()
            .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 10)
            // IoT's kinds share one pool of slots: ten in all here.
            .env("ONBOARD_QUEUE__CONCURRENCY__BIND_DEVICES", 0)
            .env("ONBOARD_QUEUE__SHUTDOWN_GRACE_MS", 10_000),
    );
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..200).map(customer).collect()).await;
    wait_all(&p, &ids[..5], Duration::from_secs(30)).await;
    assert!(worker.terminate(Duration::from_secs(30)));
    let mut succeeded = 0;
    for id in &ids {
        let s = p.status(id, false).await.unwrap();
        assert!(
            matches!(s.state, JobState::Succeeded | JobState::Queued),
            "{id} is {}",
            s.state
        );
        assert!(!s.uncertain, "{id} was handed back uncertain: {s:?}");
        succeeded += usize::from(s.state == JobState::Succeeded);
    }
    // What ran when SIGTERM came finished in the grace period; nothing was started after.
    assert!(
        succeeded < 40,
        "{succeeded} succeeded: claiming went on after SIGTERM"
    );
}

/// Jobs claimed ahead of free slots (`queue.prefetch`) keep their leases while they wait
/// longer than a lease, and go back to the queue unstarted on SIGTERM: none is recovered
/// as expired, none is marked uncertain, none loses an attempt.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_claimed_ahead_keep_their_leases_and_go_back_unstarted() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    // Each request takes 2 s, longer than the 1.5 s lease: the jobs waiting ahead outlast it.
    sandbox.set_faults(serde_json::json!({"seed": 1, "latency_ms": 2_000}));
    let mut worker = Worker::start(
        &redis,
        &sandbox,
        quick()
            .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 2)
            .env("ONBOARD_QUEUE__CONCURRENCY__BIND_DEVICES", 0)
            .env("ONBOARD_QUEUE__PREFETCH", 4)
            .env("ONBOARD_QUEUE__LEASE_MS", 1_500)
            .env("ONBOARD_QUEUE__SHUTDOWN_GRACE_MS", 10_000),
    );
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (0..12).map(customer).collect()).await;
    // Two run at a time: by the fourth success the jobs claimed ahead at the start have
    // waited about 4 s, more than two leases.
    let mut conn = redis.connection();
    let keys = QueueKeys::new(JobKind::CreateCustomer);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let succeeded: Option<u64> = conn.hget(keys.counts(), "succeeded").unwrap();
        if succeeded.unwrap_or(0) >= 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "4 jobs did not succeed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(worker.terminate(Duration::from_secs(30)));
    let expired: Option<u64> = conn.hget(keys.counts(), "leases_expired").unwrap();
    assert_eq!(
        expired.unwrap_or(0),
        0,
        "a lease ran out while its job waited"
    );
    let leased: u64 = conn.zcard(keys.leased()).unwrap();
    assert_eq!(leased, 0, "no job left leased");
    let mut handed_back = 0;
    for id in &ids {
        let s = p.status(id, false).await.unwrap();
        assert!(!s.uncertain, "{id} was marked uncertain: {s:?}");
        match s.state {
            JobState::Succeeded => assert_eq!(s.attempts, 1, "{s:?}"),
            JobState::Queued => {
                assert_eq!(s.attempts, 0, "{id} lost an attempt: {s:?}");
                let history: Option<String> = conn.hget(keys.job(id), "history").unwrap();
                if history.is_some_and(|h| h.contains("handed back unstarted")) {
                    handed_back += 1;
                }
            }
            other => panic!("{id} is {other}: {s:?}"),
        }
    }
    assert!(
        handed_back >= 1,
        "no job was waiting ahead at SIGTERM (prefetch 4)"
    );
}

/// Finding 10: an uncertain create whose earlier attempt did create the customer (or POLYV
/// user) but whose look-up did not see it yet is answered "already exists": it must look
/// again and succeed, not end dead. The sandbox times the first create out after performing
/// it, and its look-ups lag its writes by 1.5 seconds.
#[tokio::test(flavor = "multi_thread")]
async fn an_uncertain_create_that_lost_the_race_reconciles() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({
        "seed": 1, "timeout_rate": 1.0, "hang_ms": 1_500, "max_faults": 2,
        "actions": ["ServiceCreateCustomer", "add-custom-user"], "lookup_lag_ms": 1_500,
    }));
    let _worker = Worker::start(
        &redis,
        &sandbox,
        quick()
            .env("ONBOARD_HTTP_TIMEOUT_MS", 300)
            // Retries spread over seconds, so the look-ups catch up within the attempts.
            .env("ONBOARD_QUEUE__BACKOFF_BASE_MS", 500)
            .env("ONBOARD_QUEUE__BACKOFF_CAP_MS", 1_000),
    );
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, vec![customer(1), user(1)]).await;
    let done = wait_all(&p, &ids, Duration::from_secs(60)).await;
    for s in &done {
        assert_eq!(s.state, JobState::Succeeded, "{s:?}");
        assert_eq!(s.result.as_ref().unwrap()["reconciled"], true, "{s:?}");
        assert!(
            s.attempts >= 3,
            "timed out, refused as existing, then reconciled: {s:?}"
        );
    }
    let stats = sandbox.stats();
    assert_eq!(stats["duplicates"], 0, "{stats}");
}

/// A live job arriving while bulk jobs fill a busy worker starts at once: the worker keeps
/// one slot free for live work and a live enqueue wakes it. The provider answers after
/// 3 s, so a live job that waited for a bulk job's slot would start only once one had
/// succeeded. With no limit to pace them, the worker's first claim takes all the bulk
/// jobs it has room for at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_job_starts_while_bulk_jobs_fill_the_worker() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({"seed": 5, "latency_ms": 3_000}));
    let _worker = Worker::start(
        &redis,
        &sandbox,
        // The provider's kinds share one pool of slots: 10 in all.
        quick()
            .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 10)
            .env("ONBOARD_QUEUE__CONCURRENCY__BIND_DEVICES", 0),
    );
    let p = producer(&redis).await;
    let bulk = EnqueueOptions {
        lane: Some(Lane::Bulk),
        source: Some("backfill".into()),
        ..Default::default()
    };
    let backlog: Vec<_> = (0..40).map(|i| (customer(i), bulk.clone())).collect();
    p.store()
        .enqueue_many(&backlog)
        .await
        .expect("bulk enqueued");
    let stats = || async {
        p.store()
            .queue_stats(JobKind::CreateCustomer)
            .await
            .expect("stats")
    };
    // Every slot but the one kept for live work holds a bulk job.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stats().await.running < 9 {
        assert!(std::time::Instant::now() < deadline, "{:?}", stats().await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let live = p
        .store()
        .enqueue(&customer(1_000), &EnqueueOptions::default())
        .await
        .expect("live enqueued")
        .id;
    let started = loop {
        let status = p.store().status(&live, false).await.expect("status");
        if status.attempts > 0 || status.state.is_final() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let at_start = stats().await;
    assert_eq!(
        at_start.succeeded_total, 0,
        "the live job started before any bulk job ended: {started:?} {at_start:?}"
    );
    let done = wait_all(&p, &[live], Duration::from_secs(30)).await;
    assert_eq!(done[0].state, JobState::Succeeded, "{done:?}");
}
