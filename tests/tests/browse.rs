//! What the operator console reads of the queue, against a real redis-server (and the
//! 3+3 cluster with TEST_REDIS=cluster): dead letters grouped by error code and acted on a
//! group at a time, each job's history, paged listings that cover a queue exactly once,
//! finding a job by its natural key through the hashed idempotency index, and cancelling
//! one job that has not started, and when each job last changed.

use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::*;
use onboard_shared::queue::browse::{JobFilter, Listed, RowState};
use onboard_shared::queue::*;
use onboard_shared::ErrorClass;
use onboard_tests::RedisServer;
use std::collections::HashSet;

async fn store(redis: &RedisServer) -> JobStore {
    let cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    JobStore::connect(&cfg).await.expect("connect")
}

fn customer(id: &str) -> Job {
    Job::CreateCustomer(CreateCustomerJob {
        customer_id: id.into(),
        country_code: "86".into(),
        phone_number: "13900000000".into(),
    })
}

/// Enqueues customers `ids` keyed by natural key, in `source`'s bulk list.
async fn enqueue(s: &JobStore, ids: &[String], source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        let opts = EnqueueOptions {
            idempotency_key: Some(format!("create-customer:{id}")),
            lane: Some(Lane::Bulk),
            source: Some(source.to_string()),
            ..Default::default()
        };
        out.push(s.enqueue(&customer(id), &opts).await.unwrap().id);
    }
    out
}

/// Claims every due create-customer job and acks each with `ack(index)`.
async fn claim_all_and_ack(s: &JobStore, ack: impl Fn(usize) -> Ack) -> Vec<String> {
    let got = s.fetch(JobKind::CreateCustomer, 100, "t").await.unwrap();
    for (i, j) in got.jobs.iter().enumerate() {
        s.ack(JobKind::CreateCustomer, &j.id, &j.token, &ack(i))
            .await
            .unwrap();
    }
    got.jobs.iter().map(|j| j.id.clone()).collect()
}

fn names(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn dead_letters_are_grouped_by_code_and_a_group_is_retried_or_purged_whole() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    enqueue(&s, &names(5, "d"), "b1").await;
    let dead = claim_all_and_ack(&s, |i| {
        let code = if i < 3 {
            "InvalidParameter"
        } else {
            "UnauthorizedOperation"
        };
        Ack::Dead(ErrorRecord::new(ErrorClass::Permanent, code, "no"))
    })
    .await;
    assert_eq!(dead.len(), 5);
    let (groups, unindexed) = s.dead_groups(JobKind::CreateCustomer).await.unwrap();
    let counts: Vec<(&str, u64)> = groups.iter().map(|g| (g.code.as_str(), g.count)).collect();
    assert_eq!(
        counts,
        [("InvalidParameter", 3), ("UnauthorizedOperation", 2)]
    );
    assert_eq!(unindexed, 0);

    let retried = s
        .act_on_dead_group(JobKind::CreateCustomer, "InvalidParameter", false, 100)
        .await
        .unwrap();
    assert_eq!(
        (retried.done, retried.refused, retried.remaining),
        (3, 0, 0)
    );
    for id in &dead[..3] {
        assert_eq!(s.status(id, false).await.unwrap().state, JobState::Queued);
    }
    let purged = s
        .act_on_dead_group(JobKind::CreateCustomer, "UnauthorizedOperation", true, 1)
        .await
        .unwrap();
    assert_eq!(
        (purged.done, purged.remaining),
        (1, 1),
        "a call acts on at most max"
    );
    let (groups, _) = s.dead_groups(JobKind::CreateCustomer).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0].code.as_str(), groups[0].count),
        ("UnauthorizedOperation", 1)
    );
    // Which of the group's two is purged first is the index's order (dead time, then id):
    // exactly one of them is gone.
    let mut gone = 0;
    for id in &dead[3..] {
        if matches!(s.status(id, false).await, Err(QueueError::NotFound(_))) {
            gone += 1;
        }
    }
    assert_eq!(gone, 1, "one purged, one left");
}

#[tokio::test]
async fn a_job_keeps_its_history_through_a_retry_death_and_revival() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let id = enqueue(&s, &names(1, "h"), "b1").await.remove(0);
    assert!(
        s.history(&id).await.unwrap().is_empty(),
        "pending: no record yet"
    );
    claim_all_and_ack(&s, |_| Ack::Retry {
        delay_ms: 0,
        error: ErrorRecord::new(ErrorClass::Transient, "InternalError", "boom"),
        uncertain: false,
    })
    .await;
    claim_all_and_ack(&s, |_| {
        Ack::Dead(ErrorRecord::new(
            ErrorClass::Permanent,
            "InvalidParameter",
            "bad",
        ))
    })
    .await;
    s.retry_dead(&id).await.unwrap();
    claim_all_and_ack(&s, |_| Ack::Succeeded(serde_json::json!({"ok": true}))).await;

    let h = s.history(&id).await.unwrap();
    let states: Vec<&str> = h.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(
        states,
        [
            "running",
            "retry_scheduled",
            "queued",
            "running",
            "dead",
            "queued",
            "running",
            "succeeded"
        ]
    );
    assert_eq!(h[0].attempt, Some(1));
    assert_eq!(h[3].attempt, Some(2));
    assert_eq!(h[1].error.as_ref().unwrap().code, "InternalError");
    assert_eq!(h[4].error.as_ref().unwrap().code, "InvalidParameter");
    assert_eq!(h[5].reason.as_deref(), Some("dead letter retried"));
    assert!(h.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

#[tokio::test]
async fn pages_cover_a_queue_once_and_filters_keep_to_their_batch_and_lane() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let mut all: Vec<String> = enqueue(&s, &names(70, "a"), "batch_a").await;
    let b = enqueue(&s, &names(60, "b"), "batch_b").await;
    all.extend(b.iter().cloned());
    let live = s
        .enqueue(
            &customer("live1"),
            &EnqueueOptions {
                lane: Some(Lane::Live),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    all.push(live.clone());

    let mut filter = JobFilter {
        kind: JobKind::CreateCustomer,
        state: Listed::Queued,
        lane: None,
        source: None,
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list_jobs(&filter, after.as_deref(), 50).await.unwrap();
        assert!(page.rows.len() <= 50);
        assert!(page
            .rows
            .iter()
            .all(|r| r.state == RowState::Is(JobState::Queued)));
        seen.extend(page.rows.into_iter().map(|r| r.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), all.len(), "each job once");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>(),
        all.iter().collect::<HashSet<_>>()
    );

    filter.source = Some("batch_b".into());
    let page = s.list_jobs(&filter, None, 100).await.unwrap();
    assert_eq!(
        page.rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        b
    );
    assert!(page.next.is_none());
    filter.source = None;
    filter.lane = Some(Lane::Live);
    let page = s.list_jobs(&filter, None, 100).await.unwrap();
    assert_eq!(
        page.rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [live.as_str()]
    );

    // Dead letters of one batch, found among others by a bounded scan.
    claim_all_and_ack(&s, |_| {
        Ack::Dead(ErrorRecord::new(
            ErrorClass::Permanent,
            "InvalidParameter",
            "no",
        ))
    })
    .await;
    let dead_b = JobFilter {
        kind: JobKind::CreateCustomer,
        state: Listed::Dead,
        lane: None,
        source: Some("batch_b".into()),
    };
    let page = s.list_jobs(&dead_b, None, 100).await.unwrap();
    assert!(!page.rows.is_empty());
    assert!(page
        .rows
        .iter()
        .all(|r| r.source.as_deref() == Some("batch_b")
            && r.state == RowState::Is(JobState::Dead)
            && r.error.as_ref().map(|e| e.code.as_str()) == Some("InvalidParameter")));
}

#[tokio::test]
async fn a_job_is_found_by_its_natural_key_and_a_pending_one_can_be_cancelled() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let ids = enqueue(&s, &names(2, "n"), "b1").await;
    let found = s
        .job_for_idempotency_key(JobKind::CreateCustomer, "create-customer:n1")
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some(ids[1].as_str()));
    assert_eq!(
        s.job_for_idempotency_key(JobKind::CreateCustomer, "create-customer:nobody")
            .await
            .unwrap(),
        None
    );

    s.cancel_job(&ids[0]).await.unwrap();
    assert_eq!(
        s.status(&ids[0], false).await.unwrap().state,
        JobState::Cancelled
    );
    let got = s.fetch(JobKind::CreateCustomer, 10, "t").await.unwrap();
    let claimed: Vec<&str> = got.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(
        claimed,
        [ids[1].as_str()],
        "the cancelled job is never claimed"
    );
    assert!(
        matches!(
            s.cancel_job(&ids[1]).await,
            Err(QueueError::WrongState { .. })
        ),
        "a running job cannot be cancelled"
    );
    // Its key was released: the same work can be enqueued again.
    let again = enqueue(&s, &["n0".to_string()], "b2").await;
    assert_ne!(again[0], ids[0]);
}

/// A claim writes only `started_ms` and a success only `finished_ms`; the status and the
/// console's rows still say when a job last changed.
#[tokio::test]
async fn a_job_shows_its_last_change_while_it_runs_and_after_it_succeeds() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let id = enqueue(&s, &names(1, "t"), "batch_t").await.remove(0);
    let queued = s.status(&id, false).await.unwrap();
    let row_of = |state: Listed| JobFilter {
        kind: JobKind::CreateCustomer,
        state,
        lane: None,
        source: None,
    };

    let job = s
        .fetch(JobKind::CreateCustomer, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    let running = s.status(&id, false).await.unwrap();
    assert_eq!(running.state, JobState::Running);
    assert!(
        running.updated_ms >= queued.created_ms && running.updated_ms > 0,
        "a running job changed when it was claimed: {running:?}"
    );
    let page = s
        .list_jobs(&row_of(Listed::Running), None, 10)
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(
        page.rows[0].updated_ms, running.updated_ms,
        "{:?}",
        page.rows[0]
    );

    let result = serde_json::json!({"status": "OK"});
    s.ack_succeeded(JobKind::CreateCustomer, &[(&job.id, &job.token, &result)])
        .await
        .unwrap();
    let done = s.status(&id, false).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert!(
        done.updated_ms >= running.updated_ms,
        "a succeeded job changed when it succeeded: {done:?} after {running:?}"
    );
    let mut conn = redis.connection();
    let finished: u64 = redis::Commands::hget(
        &mut conn,
        onboard_shared::queue::keys::QueueKeys::new(JobKind::CreateCustomer).job(&id),
        "finished_ms",
    )
    .unwrap();
    assert_eq!(done.updated_ms, finished);
}
