//! create-account's suspended verify-code flow, end to end: real redis-server, sandbox and
//! worker; codes are read from the sandbox's SMS inbox as a customer would read their phone.

use onboard_producer::Producer;
use onboard_shared::jobs::*;
use onboard_shared::queue::*;
use onboard_shared::secret::Secret;
use onboard_tests::fixtures::*;
use onboard_tests::{wait_all, RedisServer, Sandbox, Worker, WorkerOptions};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn phone_of(i: usize) -> String {
    match account(i) {
        Job::CreateAccount(a) => format!("{}{}", a.country_code, a.phone_num),
        _ => unreachable!("account() builds create-account jobs"),
    }
}

fn mail_of(i: usize) -> String {
    format!("acct{i}@example.com")
}

/// Waits until the job is awaiting a code that differs from `previous` in the sandbox inbox,
/// and returns that code.
async fn awaiting_with_code(
    p: &Producer,
    sandbox: &Sandbox,
    id: &str,
    phone: &str,
) -> (JobStatus, String) {
    let status = p
        .wait_until(id, WAIT, |s| {
            s.state == JobState::AwaitingCode || s.state.is_final()
        })
        .await
        .expect("job reaches awaiting_code");
    assert_eq!(status.state, JobState::AwaitingCode, "{status:?}");
    let code = sandbox
        .latest_code(phone)
        .expect("the sandbox texted a code");
    (status, code)
}

/// A 6-digit code that is not `right`.
fn wrong(right: &str) -> Secret {
    Secret::new(if right == "000000" {
        "111111"
    } else {
        "000000"
    })
}

/// After a wrong code the job runs again and comes back to `awaiting_code` with one more
/// failure counted, or ends: waits for that, not for the state alone.
async fn wait_changed(p: &Producer, id: &str, code_failures: u32) -> JobStatus {
    p.wait_until(id, WAIT, |s| {
        s.state.is_final() || (s.state == JobState::AwaitingCode && s.code_failures > code_failures)
    })
    .await
    .expect("the wrong code was tried")
}

/// A fresh stack (Redis, sandbox, a worker started with `opts`) with create-account job
/// number `i` enqueued and already awaiting the code the sandbox texted. Bind `redis` and
/// `_worker` (even as `_redis`): dropping them stops the processes.
struct Awaiting {
    redis: RedisServer,
    sandbox: Sandbox,
    _worker: Worker,
    p: Producer,
    id: String,
    status: JobStatus,
    code: String,
}

async fn account_awaiting_code(i: usize, opts: WorkerOptions) -> Awaiting {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let worker = Worker::start(&redis, &sandbox, opts);
    let p = producer(&redis).await;
    let id = p
        .enqueue(&account(i), &Default::default())
        .await
        .unwrap()
        .id;
    let (status, code) = awaiting_with_code(&p, &sandbox, &id, &phone_of(i)).await;
    Awaiting {
        redis,
        sandbox,
        _worker: worker,
        p,
        id,
        status,
        code,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_through_the_cli() {
    let Awaiting {
        redis,
        sandbox,
        p,
        id,
        status,
        code,
        _worker,
        ..
    } = account_awaiting_code(1, quick()).await;
    assert!(
        status.deadline_ms.is_some(),
        "an awaiting job has a deadline"
    );

    let out = cli(&redis.url(), &["verify-code", &id, &code]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let done = p.wait(&id, WAIT).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let uin = done
        .result
        .as_ref()
        .and_then(|r| r["uin"].as_str())
        .unwrap_or("");
    assert!(!uin.is_empty(), "result carries the Uin: {:?}", done.result);
    let stats = sandbox.stats();
    assert_eq!(stats["creates"]["accounts"][mail_of(1)], 1, "{stats}");
    // The code was a secret for one run: the success removes it from the record.
    let record = onboard_shared::queue::keys::QueueKeys::new(JobKind::CreateAccount).job(&id);
    let kept: bool = redis::Commands::hexists(&mut redis.connection(), &record, "code").unwrap();
    assert!(!kept, "the verify code outlived the job's success");

    // The job is done: a second supply names its state and changes nothing.
    let out = cli(&redis.url(), &["verify-code", &id, &code]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("succeeded"),
        "the error names the state: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_code_then_the_right_one() {
    let Awaiting {
        sandbox,
        p,
        id,
        code,
        redis: _redis,
        _worker,
        ..
    } = account_awaiting_code(2, quick()).await;

    p.supply_code(&id, &wrong(&code)).await.unwrap();
    let after = wait_changed(&p, &id, 0).await;
    assert_eq!(after.state, JobState::AwaitingCode);
    assert_eq!(after.code_failures, 1);

    p.supply_code(&id, &Secret::new(code)).await.unwrap();
    let done = p
        .wait_until(&id, WAIT, |s| s.state.is_final())
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(sandbox.stats()["creates"]["accounts"][mail_of(2)], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn three_wrong_codes_end_dead() {
    let Awaiting {
        sandbox,
        p,
        id,
        code,
        redis: _redis,
        _worker,
        ..
    } = account_awaiting_code(3, quick()).await;
    let mut last = None;
    for failures in 0..3 {
        p.supply_code(&id, &wrong(&code)).await.unwrap();
        last = Some(wait_changed(&p, &id, failures).await);
    }
    let dead = last.expect("three rounds");
    assert_eq!(dead.state, JobState::Dead, "{dead:?}");
    let err = dead.last_error.expect("a dead job says why");
    assert!(
        err.code.contains("VerificationCodeIllegal")
            || err.message.contains("VerificationCodeIllegal"),
        "{err:?}"
    );
    assert!(sandbox.stats()["creates"]["accounts"][mail_of(3)].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_supplies_create_one_account() {
    let Awaiting {
        redis,
        sandbox,
        p,
        id,
        code,
        _worker,
        ..
    } = account_awaiting_code(4, quick()).await;
    let p2 = producer(&redis).await;
    let code2 = Secret::new(code.clone());
    let code1 = Secret::new(code);
    let (a, b) = tokio::join!(p.supply_code(&id, &code1), p2.supply_code(&id, &code2));
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one supply resumes the job: {a:?} {b:?}"
    );
    let refused = a.err().or(b.err()).expect("one was refused").to_string();
    assert!(
        refused.contains("queued") || refused.contains("running") || refused.contains("succeeded"),
        "the refusal names the state: {refused}"
    );
    let done = p
        .wait_until(&id, WAIT, |s| s.state.is_final())
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    let stats = sandbox.stats();
    assert_eq!(stats["creates"]["accounts"][mail_of(4)], 1, "{stats}");
    assert_eq!(stats["duplicates"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_job_gets_a_new_code_on_resend() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(
        &redis,
        &sandbox,
        quick().env("ONBOARD_QUEUE__CODE_LIFETIME_SECS", 2),
    );
    let p = producer(&redis).await;
    let id = p
        .enqueue(&account(5), &Default::default())
        .await
        .unwrap()
        .id;
    let expired = p
        .wait_until(&id, WAIT, |s| s.state == JobState::Expired)
        .await
        .unwrap();
    assert_eq!(expired.state, JobState::Expired);
    let first = sandbox
        .latest_code(&phone_of(5))
        .expect("a first code was texted");
    let refused = p
        .supply_code(&id, &Secret::new(first))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("expired"), "{refused}");

    let out = cli(&redis.url(), &["resend-code", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The new code must be used before it expires too (2 s here), so supply it at once.
    let status = p
        .wait_until(&id, WAIT, |s| s.state == JobState::AwaitingCode)
        .await
        .unwrap();
    assert_eq!(status.state, JobState::AwaitingCode);
    let inbox = sandbox.get(&format!("/_sandbox/sms?phone={}", phone_of(5)));
    assert_eq!(
        inbox["codes"].as_array().map(Vec::len),
        Some(2),
        "a second code: {inbox}"
    );
    let second = inbox["latest"].as_str().unwrap().to_string();
    p.supply_code(&id, &Secret::new(second)).await.unwrap();
    let done = p
        .wait_until(&id, WAIT, |s| s.state.is_final())
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn suspended_jobs_hold_no_worker() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let _worker = Worker::start(
        &redis,
        &sandbox,
        quick().env("ONBOARD_QUEUE__CONCURRENCY__CREATE_ACCOUNT", 2),
    );
    let p = producer(&redis).await;
    // 100 suspended jobs with 2 slots: if awaiting held a slot, the third would never start.
    let ids = enqueue_all(&p, (100..200).map(account).collect()).await;
    let states = wait_all(&p, &ids, Duration::from_secs(60)).await;
    assert!(states.iter().all(|s| s.state == JobState::AwaitingCode));
    // Work keeps flowing: a new job of the same kind still gets its turn, and a supplied
    // code completes its job while the other 99 still wait.
    let late = p
        .enqueue(&account(200), &Default::default())
        .await
        .unwrap()
        .id;
    let (_, code) = awaiting_with_code(&p, &sandbox, &late, &phone_of(200)).await;
    let (_, first_code) = awaiting_with_code(&p, &sandbox, &ids[0], &phone_of(100)).await;
    p.supply_code(&ids[0], &Secret::new(first_code))
        .await
        .unwrap();
    p.supply_code(&late, &Secret::new(code)).await.unwrap();
    for id in [&ids[0], &late] {
        let done = p
            .wait_until(id, WAIT, |s| s.state.is_final())
            .await
            .unwrap();
        assert_eq!(done.state, JobState::Succeeded);
    }
    let stats = p.stats().await.unwrap();
    let acct = stats
        .iter()
        .find(|q| q.kind == JobKind::CreateAccount)
        .unwrap();
    assert_eq!(Some(acct.awaiting_code), Some(99));
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_supplied_after_a_worker_restart_complete_the_jobs() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let mut worker = Worker::start(&redis, &sandbox, quick());
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, (300..305).map(account).collect()).await;
    let mut codes = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        codes.push(
            awaiting_with_code(&p, &sandbox, id, &phone_of(300 + n))
                .await
                .1,
        );
    }
    assert!(worker.terminate(Duration::from_secs(20)), "clean shutdown");
    let _worker = Worker::start(&redis, &sandbox, quick());
    for (id, code) in ids.iter().zip(codes) {
        p.supply_code(id, &Secret::new(code)).await.unwrap();
    }
    for done in wait_all(&p, &ids, WAIT).await {
        assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn send_verify_code_mode() {
    let mode = quick().env("ONBOARD_TENCENTCLOUD__VERIFY_CODE_MODE", "send-verify-code");
    let Awaiting {
        sandbox,
        p,
        id,
        code,
        redis: _redis,
        _worker,
        ..
    } = account_awaiting_code(6, mode).await;
    let stats = sandbox.stats();
    assert_eq!(
        stats["actions"]["SendVerifyCode"]["successes"], 1,
        "{stats}"
    );
    assert!(
        stats["actions"]["CreateAccount"]["requests"]
            .as_u64()
            .unwrap_or(0)
            == 0,
        "phase 1 used SendVerifyCode, not CreateAccount: {stats}"
    );
    p.supply_code(&id, &Secret::new(code)).await.unwrap();
    let done = p
        .wait_until(&id, WAIT, |s| s.state.is_final())
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");

    // A resend within 60 s hits the provider's resend rule: deferred as throttling, not
    // failed.
    let second = p
        .enqueue(&account(7), &Default::default())
        .await
        .unwrap()
        .id;
    let (before, _) = awaiting_with_code(&p, &sandbox, &second, &phone_of(7)).await;
    p.resend_code(&second).await.unwrap();
    let deferred = p
        .wait_until(&second, WAIT, |s| {
            s.state == JobState::RetryScheduled || s.state.is_final()
        })
        .await
        .unwrap();
    assert_eq!(deferred.state, JobState::RetryScheduled, "{deferred:?}");
    assert!(deferred.throttles >= 1, "{deferred:?}");
    assert_eq!(
        deferred.attempts, before.attempts,
        "throttling used no attempt: {deferred:?}"
    );
}

/// Finding 11: every expiry is counted in `onboard_jobs_finished_total{outcome="expired"}`,
/// also when someone supplies a code after the deadline (that supply is refused and
/// changes nothing; the sweeper is the one place jobs expire).
#[tokio::test(flavor = "multi_thread")]
async fn a_code_supplied_after_the_deadline_is_refused_and_the_expiry_counted() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let worker = Worker::start(
        &redis,
        &sandbox,
        quick().env("ONBOARD_QUEUE__CODE_LIFETIME_SECS", 1),
    );
    let p = producer(&redis).await;
    let id = p
        .enqueue(&account(6), &Default::default())
        .await
        .unwrap()
        .id;
    let awaiting = p
        .wait_until(&id, WAIT, |s| s.state == JobState::AwaitingCode)
        .await
        .unwrap();
    // Waiting out the deadline is the point here: nothing else marks its passing.
    let deadline = awaiting
        .deadline_ms
        .expect("an awaiting job has a deadline");
    let now = onboard_shared::clock::now_ms();
    tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now) + 20)).await;
    let code = sandbox
        .latest_code(&phone_of(6))
        .expect("a code was texted");
    let refused = p.supply_code(&id, &Secret::new(code)).await.unwrap_err();
    assert!(refused.to_string().contains("expired"), "{refused}");
    let expired = p
        .wait_until(&id, WAIT, |s| s.state == JobState::Expired)
        .await
        .unwrap();
    assert_eq!(expired.state, JobState::Expired);
    let m = onboard_tests::scrape::scrape(worker.metrics_url());
    let counted = onboard_tests::scrape::sum(
        &m,
        "onboard_jobs_finished_total",
        &[("kind", "create-account"), ("outcome", "expired")],
    );
    assert_eq!(counted, 1.0);
}
