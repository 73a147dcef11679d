//! Idempotency keys mean one request, against a real redis-server: the same key with the
//! same payload returns the first job; with another payload it is refused, naming the first
//! job and its state; `check_keys` tells the same beforehand; the key keeps a keyed digest of
//! the payload, never the payload.

use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::*;
use onboard_shared::queue::*;
use onboard_shared::secret::Secret;
use onboard_tests::RedisServer;
use redis::Commands;

async fn store(redis: &RedisServer) -> JobStore {
    let cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    JobStore::connect(&cfg).await.expect("connect")
}

fn user(passwd: &str) -> Job {
    Job::RegisterUser(RegisterUserJob {
        email: "u@example.com".into(),
        mobile: "13800000000".into(),
        passwd: Secret::new(passwd),
        name: None,
        industry: None,
        sale_id: None,
    })
}

fn keyed(job: Job) -> (Job, EnqueueOptions) {
    (
        job,
        EnqueueOptions {
            idempotency_key: Some("register-user:u@example.com".into()),
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_refused_naming_the_first_job() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let (job, opts) = keyed(user("first-pass"));
    let first = s.enqueue(&job, &opts).await.unwrap();
    let again = s.enqueue(&job, &opts).await.unwrap();
    assert_eq!(
        (again.id.as_str(), again.duplicate),
        (first.id.as_str(), true)
    );

    let (changed, opts) = keyed(user("other-pass"));
    match s.enqueue(&changed, &opts).await {
        Err(QueueError::IdempotencyConflict {
            index,
            first_id,
            state,
        }) => {
            assert_eq!(
                (index, first_id.as_str(), state.as_str()),
                (0, first.id.as_str(), "queued")
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let stats = s.queue_stats(JobKind::RegisterUser).await.unwrap();
    assert_eq!(
        stats.enqueued_total, 1,
        "nothing was written for the conflict"
    );

    // The state named is the job's current one.
    s.fetch(JobKind::RegisterUser, 1, "t").await.unwrap();
    let err = s.enqueue(&changed, &opts).await.unwrap_err();
    assert!(err.to_string().contains("running"), "{err}");
    assert!(!err.to_string().contains("other-pass"), "{err}");
}

#[tokio::test]
async fn a_key_twice_in_one_call_with_two_payloads_conflicts() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let err = s
        .enqueue_many(&[keyed(user("first-pass")), keyed(user("other-pass"))])
        .await
        .unwrap_err();
    let QueueError::IdempotencyConflict { index, state, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!((index, state.as_str()), (1, "queued"));
    let stats = s.queue_stats(JobKind::RegisterUser).await.unwrap();
    assert_eq!(stats.enqueued_total, 1);
}

#[tokio::test]
async fn check_keys_tells_unused_same_and_changed_apart_without_writing() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let unkeyed = (user("x-pass"), EnqueueOptions::default());
    let before = s
        .check_keys(&[keyed(user("first-pass")), unkeyed.clone()])
        .await
        .unwrap();
    assert_eq!(before, [KeyCheck::Unused, KeyCheck::Unused]);
    let first = s.enqueue_many(&[keyed(user("first-pass"))]).await.unwrap();
    let after = s
        .check_keys(&[
            keyed(user("first-pass")),
            keyed(user("other-pass")),
            unkeyed,
        ])
        .await
        .unwrap();
    assert_eq!(
        after,
        [
            KeyCheck::Same {
                first_id: first[0].id.clone()
            },
            KeyCheck::Changed {
                first_id: first[0].id.clone(),
                state: "queued".into()
            },
            KeyCheck::Unused
        ]
    );
    let stats = s.queue_stats(JobKind::RegisterUser).await.unwrap();
    assert_eq!(stats.enqueued_total, 1, "asking writes nothing");
}

/// The entries of every idempotency bucket (`idem:<4 hex digits>`) of `kind`: (key hash,
/// value).
fn idem_entries(redis: &RedisServer, kind: JobKind) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut conn = redis.connection();
    let buckets: Vec<String> = conn
        .keys(keys::QueueKeys::new(kind).idempotency("????"))
        .unwrap();
    let mut out = Vec::new();
    for bucket in buckets {
        let kind: String = redis::cmd("TYPE").arg(&bucket).query(&mut conn).unwrap();
        assert_eq!(kind, "hash", "{bucket}");
        let entries: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&bucket).unwrap();
        out.extend(entries);
    }
    out
}

#[tokio::test]
async fn the_key_keeps_a_keyed_digest_never_the_payload() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let (job, opts) = keyed(user("pa55word-XYZ"));
    let e = s.enqueue(&job, &opts).await.unwrap();
    let entries = idem_entries(&redis, JobKind::RegisterUser);
    assert_eq!(entries.len(), 1);
    let (hash, value) = &entries[0];
    assert_eq!(hash.len(), 16, "the key's hash, never the key");
    assert!(!hash.windows(5).any(|w| w == b"u@exa"));
    let ulid = e.id.strip_prefix("user_").unwrap();
    let (id, digest) = value.split_at(ulid.len());
    assert_eq!(
        id,
        ulid.as_bytes(),
        "the id without the prefix its queue implies"
    );
    let digest = digest.strip_prefix(b"|").expect("id|digest");
    assert_eq!(digest.len(), 16, "no expiry while the job waits");
    assert!(!value.windows(8).any(|w| w == b"pa55word"));
    // Not a plain hash of the payload anyone could recompute.
    use sha2::Digest;
    let payload = serde_json::to_vec(&job).unwrap();
    assert_ne!(digest, &sha2::Sha256::digest(&payload)[..16]);
    // The operator console's lookup.
    assert_eq!(
        s.job_for_idempotency_key(JobKind::RegisterUser, "register-user:u@example.com")
            .await
            .unwrap(),
        Some(e.id.clone())
    );
    assert_eq!(
        s.job_for_idempotency_key(JobKind::RegisterUser, "register-user:other")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.job_for_idempotency_key(JobKind::CreateAccount, "register-user:u@example.com")
            .await
            .unwrap(),
        None,
        "keys are per kind"
    );
}

/// Waits until Redis has expired `record` (the retention is a second in these tests).
async fn record_gone(redis: &RedisServer, record: &str) {
    let mut conn = redis.connection();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while conn.exists::<_, bool>(record).unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "{record} never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A finished job's key lives as long as its record: once the retention has passed the
/// entry no longer holds the key (a new job takes it), and the sweeper deletes what is left
/// of expired entries, never a live one.
#[tokio::test]
async fn an_expired_key_is_free_again_and_the_sweeper_deletes_it() {
    let redis = RedisServer::start();
    let cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    let mut short = cfg.clone();
    short.queue.retention_secs = 1;
    let s = JobStore::connect(&short).await.expect("connect");
    let (job, opts) = keyed(user("pa55word-XYZ"));
    let first = s.enqueue(&job, &opts).await.unwrap();
    let waiting = s
        .enqueue(
            &user("other-pass"),
            &EnqueueOptions {
                idempotency_key: Some("register-user:still-waiting".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let claimed = s.fetch(JobKind::RegisterUser, 1, "t").await.unwrap().jobs;
    assert_eq!(claimed[0].id, first.id);
    s.ack(
        JobKind::RegisterUser,
        &claimed[0].id,
        &claimed[0].token,
        &Ack::Succeeded(serde_json::json!({})),
    )
    .await
    .unwrap();
    // Succeeded: nothing was written to the entries (each `<ulid>|<digest>`); the record
    // carries the retention, and the entry holds the key while the record lives.
    let entries = idem_entries(&redis, JobKind::RegisterUser);
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .all(|(_, v)| v.len() == first.id.len() - 5 + 17));
    let record = keys::QueueKeys::new(JobKind::RegisterUser).job(&first.id);
    let ttl: i64 = redis.connection().pttl(&record).unwrap();
    assert!(ttl > 0 && ttl <= 1_000, "record ttl {ttl} ms");
    let again = s.enqueue(&job, &opts).await.unwrap();
    assert_eq!(
        (again.id.as_str(), again.duplicate),
        (first.id.as_str(), true)
    );

    record_gone(&redis, &record).await;
    let key = "register-user:u@example.com";
    assert_eq!(
        s.job_for_idempotency_key(JobKind::RegisterUser, key)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.check_keys(&[keyed(user("changed-pass"))]).await.unwrap(),
        vec![KeyCheck::Unused],
        "an expired entry does not make another payload a conflict"
    );
    // The sweeper: a whole pass deletes the expired entry and keeps the waiting job's.
    let removed = s
        .sweep_idempotency_keys(JobKind::RegisterUser, IDEMPOTENCY_BUCKETS)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(idem_entries(&redis, JobKind::RegisterUser).len(), 1);
    assert_eq!(
        s.job_for_idempotency_key(JobKind::RegisterUser, "register-user:still-waiting")
            .await
            .unwrap(),
        Some(waiting.id)
    );
    // The key is free: the same request now makes a new job.
    let fresh = s.enqueue(&job, &opts).await.unwrap();
    assert!(!fresh.duplicate);
    assert_ne!(fresh.id, first.id);
    assert_eq!(
        s.job_for_idempotency_key(JobKind::RegisterUser, key)
            .await
            .unwrap(),
        Some(fresh.id)
    );
}

/// An expired entry that the sweeper has not reached yet is taken over by the next enqueue
/// of its key, without a sweep.
#[tokio::test]
async fn an_expired_entry_is_taken_over_before_any_sweep() {
    let redis = RedisServer::start();
    let mut cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    cfg.queue.retention_secs = 1;
    let s = JobStore::connect(&cfg).await.expect("connect");
    let (job, opts) = keyed(user("pa55word-XYZ"));
    let first = s.enqueue(&job, &opts).await.unwrap();
    let claimed = s.fetch(JobKind::RegisterUser, 1, "t").await.unwrap().jobs;
    s.ack(
        JobKind::RegisterUser,
        &claimed[0].id,
        &claimed[0].token,
        &Ack::Succeeded(serde_json::json!({})),
    )
    .await
    .unwrap();
    record_gone(
        &redis,
        &keys::QueueKeys::new(JobKind::RegisterUser).job(&first.id),
    )
    .await;
    let (other, opts) = keyed(user("another-pass"));
    let second = s.enqueue(&other, &opts).await.unwrap();
    assert!(
        !second.duplicate,
        "not a conflict with a job whose record is gone"
    );
    assert_ne!(second.id, first.id);
    assert_eq!(idem_entries(&redis, JobKind::RegisterUser).len(), 1);
}

/// A queue that held jobs before the buckets keeps its keys as top-level strings,
/// `idem:<hex>` = `<id>|<digest in hex>`, and its waiting jobs' pending entries name them in
/// hex. Nothing migrates them, so an enqueue, a lookup and a finished job's expiry must
/// still find them (and a queue created since is marked never to look).
#[tokio::test]
async fn a_key_written_before_the_buckets_still_holds_its_job() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let kind = JobKind::RegisterUser;
    let keys = keys::QueueKeys::new(kind);
    let mut conn = redis.connection();
    let (job, opts) = keyed(user("first-pass"));
    let first = s.enqueue(&job, &opts).await.unwrap();
    let marker = keys
        .idempotency("format")
        .replace("idem:format", "idem-format");
    let format: Option<String> = conn.get(&marker).unwrap();
    assert_eq!(format.as_deref(), Some("2"), "a new queue is marked");

    // Rewrite what the enqueue wrote as an older version wrote it.
    let entries = idem_entries(&redis, kind);
    assert_eq!(entries.len(), 1);
    let (hash, value) = &entries[0];
    let digest = &value[value.len() - 16..];
    let buckets: Vec<String> = conn.keys(keys.idempotency("????")).unwrap();
    let _: () = conn.del(&buckets).unwrap();
    let _: () = conn.del(&marker).unwrap();
    let older = keys.idempotency(&hex::encode(hash));
    let _: () = conn
        .set(&older, format!("{}|{}", first.id, hex::encode(digest)))
        .unwrap();
    let entry: Vec<u8> = conn.hget(keys.pending(), &first.id).unwrap();
    let flag = entry
        .iter()
        .position(|b| *b == b'#')
        .expect("a keyed entry");
    let old_entry = [
        &entry[..flag],
        hex::encode(hash).as_bytes(),
        b"|",
        &entry[flag + 17..],
    ]
    .concat();
    let _: () = conn.hset(keys.pending(), &first.id, old_entry).unwrap();

    // The same request is the first job; another payload conflicts; the console finds it.
    let again = s.enqueue(&job, &opts).await.unwrap();
    assert_eq!(
        (again.id.as_str(), again.duplicate),
        (first.id.as_str(), true)
    );
    let (changed, opts2) = keyed(user("other-pass"));
    match s.enqueue(&changed, &opts2).await {
        Err(QueueError::IdempotencyConflict { first_id, .. }) => assert_eq!(first_id, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        s.job_for_idempotency_key(kind, "register-user:u@example.com")
            .await
            .unwrap(),
        Some(first.id.clone())
    );
    assert!(idem_entries(&redis, kind).is_empty(), "no second holder");
    let format: Option<String> = conn.get(&marker).unwrap();
    assert_eq!(format, None, "a queue that existed before is not marked");

    // Its job runs from the older pending entry; success gives the older key its expiry.
    let claimed = s.fetch(kind, 1, "t").await.unwrap().jobs;
    assert_eq!(claimed[0].id, first.id);
    s.ack(
        kind,
        &first.id,
        &claimed[0].token,
        &Ack::Succeeded(serde_json::json!({})),
    )
    .await
    .unwrap();
    let ttl: i64 = conn.ttl(&older).unwrap();
    assert!(ttl > 0, "the older key expires with its record (ttl {ttl})");
}
