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

#[tokio::test]
async fn the_key_keeps_a_keyed_digest_never_the_payload() {
    let redis = RedisServer::start();
    let s = store(&redis).await;
    let (job, opts) = keyed(user("pa55word-XYZ"));
    let e = s.enqueue(&job, &opts).await.unwrap();
    let mut conn = redis.connection();
    let keys: Vec<String> = conn
        .keys(onboard_shared::queue::keys::QueueKeys::new(JobKind::RegisterUser).idempotency("*"))
        .unwrap();
    assert_eq!(keys.len(), 1);
    let value: String = conn.get(&keys[0]).unwrap();
    let (id, digest) = value.split_once('|').expect("id|digest");
    assert_eq!(id, e.id);
    assert_eq!(digest.len(), 32);
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!value.contains("pa55word"));
    // Not a plain hash of the payload anyone could recompute.
    use sha2::Digest;
    let payload = serde_json::to_vec(&job).unwrap();
    assert_ne!(digest, hex::encode(&sha2::Sha256::digest(&payload)[..16]));
}
