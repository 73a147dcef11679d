//! Start-up checks that turn a misconfigured process away before it touches a job: an
//! encryption key that does not match the data in Redis, key rotation with `rekey`, and a
//! worker without the credentials of a kind it would run.

use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{Ack, EnqueueOptions, JobState, JobStore, QueueError};
use onboard_shared::secret::Secret;
use onboard_tests::fixtures::*;
use onboard_tests::{bin, RedisServer, Sandbox};
use std::process::Command;

const KEY_A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const KEY_B: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

async fn store_with_key(redis: &RedisServer, keys: &str) -> Result<JobStore, QueueError> {
    let cfg = Config {
        profile: Profile::Production,
        redis_url: redis.url(),
        encryption_key: Some(Secret::new(keys)),
        ..Config::default()
    };
    JobStore::connect(&cfg).await
}

/// Runs a binary with `env` against `redis`, on the production profile with `keys`.
fn run(
    name: &str,
    redis: &RedisServer,
    keys: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> std::process::Output {
    let mut cmd = Command::new(bin(name));
    cmd.args(args)
        .env("ONBOARD_REDIS_URL", redis.url())
        .env("ONBOARD_ENCRYPTION_KEY", keys)
        .env("ONBOARD_METRICS_LISTEN", "127.0.0.1:0")
        .env_remove("ONBOARD_PROFILE")
        .env_remove("ONBOARD_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the binary")
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_rotation_re_encrypts_everything() {
    let redis = RedisServer::start();
    let a = store_with_key(&redis, KEY_A)
        .await
        .expect("the first key is registered");
    // Values at rest in each form: a bulk entry (with an idempotency key and its payload
    // digest), a record with its payload and a result.
    let keyed = EnqueueOptions {
        idempotency_key: Some("customer-1".into()),
        ..Default::default()
    };
    let queued = a.enqueue(&customer(1), &keyed).await.unwrap();
    let done = a.enqueue(&user(2), &Default::default()).await.unwrap();
    let claimed = a
        .fetch(JobKind::RegisterUser, 1, "t")
        .await
        .unwrap()
        .jobs
        .remove(0);
    a.ack(
        JobKind::RegisterUser,
        &claimed.id,
        &claimed.token,
        &Ack::Succeeded(serde_json::json!({"app_secret": "s3cr3t"})),
    )
    .await
    .unwrap();

    // The wrong key: refused at connect, naming the problem; nothing is dead-lettered.
    let err = store_with_key(&redis, KEY_B).await.unwrap_err();
    assert!(matches!(err, QueueError::KeyMismatch { .. }), "{err}");
    let providers = Config::sandbox_provider_env("http://127.0.0.1:9");
    let worker = run("onboard-worker", &redis, KEY_B, &[], &providers);
    assert!(!worker.status.success());
    let stderr = String::from_utf8_lossy(&worker.stderr);
    assert!(
        stderr.contains("encrypted with key(s) this process does not have"),
        "{stderr}"
    );
    assert_eq!(
        a.queue_stats(JobKind::CreateCustomer).await.unwrap().dead,
        0
    );

    // Rotation: the new key first, the old one after it; rekey; then the new one alone.
    let both = format!("{KEY_B},{KEY_A}");
    let out = run("onboard-producer", &redis, &both, &["rekey"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("re-encrypted 4 value(s)"), "{stdout}");
    assert!(stdout.contains("configure the first key alone"), "{stdout}");
    let b = store_with_key(&redis, KEY_B)
        .await
        .expect("the new key alone now");
    let status = b.status(&done.id, true).await.unwrap();
    assert_eq!(status.result.unwrap()["app_secret"], "s3cr3t");
    let got = b.fetch(JobKind::CreateCustomer, 1, "t").await.unwrap();
    assert_eq!(got.jobs[0].id, queued.id);
    assert_eq!(got.jobs[0].job, customer(1));
    // The same request again is still the same request (its digest was re-made).
    let again = b.enqueue(&customer(1), &keyed).await.unwrap();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.id, queued.id);
    // And the old key alone is now the wrong one.
    assert!(matches!(
        store_with_key(&redis, KEY_A).await,
        Err(QueueError::KeyMismatch { .. })
    ));
}

#[tokio::test]
async fn a_worker_without_credentials_for_a_kind_it_runs_refuses_to_start() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let mut env: Vec<(&str, String)> = Config::sandbox_provider_env(sandbox.url());
    env.retain(|(k, _)| *k != "ONBOARD_POLYV__APP_SECRET");
    env.push(("ONBOARD_PROFILE", "sandbox".into()));
    let out = run("onboard-worker", &redis, KEY_A, &[], &env);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("register-user run here but the polyv credentials are missing: set ONBOARD_POLYV__APP_SECRET"),
        "{stderr}"
    );
    // With register-user off, the same worker starts (and dead-letters nothing).
    let p = producer_with_key(&redis).await;
    let id = p
        .enqueue(&customer(3), &EnqueueOptions::default())
        .await
        .unwrap()
        .id;
    env.push(("ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER", "0".into()));
    let mut cmd = Command::new(bin("onboard-worker"));
    cmd.env("ONBOARD_REDIS_URL", redis.url())
        .env("ONBOARD_ENCRYPTION_KEY", KEY_A)
        .env("ONBOARD_METRICS_LISTEN", "127.0.0.1:0");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let (mut child, _) = onboard_harness::spawn_ready(
        cmd,
        onboard_shared::ready::WORKER,
        std::time::Duration::from_secs(30),
    )
    .expect("the worker starts");
    let done = p
        .wait(&id, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(done.state, JobState::Succeeded);
}

async fn producer_with_key(redis: &RedisServer) -> onboard_producer::Producer {
    let cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        encryption_key: Some(Secret::new(KEY_A)),
        ..Config::default()
    };
    onboard_producer::Producer::connect(&cfg).await.unwrap()
}
