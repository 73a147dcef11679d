//! Failover on a real Redis Cluster (3 masters, 3 replicas on loopback): a master killed
//! with SIGKILL in the middle of a run, and what `durability` promises about the writes
//! its replica had not received yet.

use onboard_shared::config::{Config, Durability, Profile};
use onboard_shared::jobs::JobKind;
use onboard_shared::providers::Provider;
use onboard_shared::queue::keys::ProviderKeys;
use onboard_shared::queue::{Ack, AckStatus, EnqueueOptions, JobState, JobStore, QueueError};
use onboard_shared::redis_link::{healing, RedisConnection, RedisLink};
use onboard_tests::fixtures::*;
use onboard_tests::{blocking_http_status, wait_all, RedisCluster, RedisServer, Sandbox, Worker};
use std::time::{Duration, Instant};

/// The master serving the IoT queues: the one the running jobs depend on most.
fn iot_master(cluster: &RedisCluster) -> u16 {
    cluster.master_of(&ProviderKeys::new(Provider::Iot).notify())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_master_killed_mid_run_loses_no_job_and_creates_none_twice() {
    let mut redis = RedisServer::Cluster(RedisCluster::start());
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(serde_json::json!({"seed": 1, "latency_ms": 20}));
    let opts = quick()
        .env("ONBOARD_QUEUE__LEASE_MS", 3_000)
        .env("ONBOARD_QUEUE__CONCURRENCY__CREATE_CUSTOMER", 100)
        .env("ONBOARD_QUEUE__CONCURRENCY__REGISTER_USER", 100)
        .env("ONBOARD_QUEUE__CONCURRENCY__BIND_DEVICES", 100);
    let p = producer(&redis).await;
    let (customers, others) = enqueue_mixed(&p, 4_000, 4_000, 2_000).await;
    let _worker = Worker::start(&redis, &sandbox, opts);

    // A fifth of the way in, the IoT queues' master dies.
    wait_all(&p, &customers[800..=800], Duration::from_secs(120)).await;
    let RedisServer::Cluster(cluster) = &mut redis else {
        unreachable!("started as a cluster")
    };
    let victim = iot_master(cluster);
    let replica = cluster.replica_of(victim);
    cluster.kill(victim);

    let all: Vec<String> = customers.iter().chain(&others).cloned().collect();
    all_succeeded_each_created_once(&p, &all, &sandbox, 4_000, 4_000).await;
    assert_eq!(
        iot_master(cluster),
        replica,
        "the replica of the killed master took over its slots"
    );
}

/// A shared connection that hears nothing for `healing::SILENCE` is replaced while the
/// request waits, so a wedged client heals before a lease (30 s by default) lapses. The wedge
/// itself (redis-rs's task sending nothing, seen when a master died under load) cannot be
/// made on purpose: a request that gets no answer until the connection is replaced, or a
/// timeout at the client's 30 s, stands in for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connection_is_replaced_before_its_request_times_out() {
    let cluster = RedisCluster::start();
    let link = RedisLink::discover(&cluster.seed_list())
        .await
        .expect("the cluster is up");
    let Ok(RedisConnection::SharedCluster(shared)) = link.shared().await else {
        panic!("a cluster's shared connection is a healing one")
    };
    let watched = shared.clone();
    let sent = Instant::now();
    let heard = shared
        .request(|_wedged| async move {
            while watched.replacements() == 0 {
                if sent.elapsed() >= Duration::from_secs(30) {
                    return Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(watched.replacements())
        })
        .await;
    assert_eq!(
        heard.ok(),
        Some(1),
        "the connection was replaced once while its request waited, before the client's \
         timeout (after {:?})",
        sent.elapsed()
    );
    assert!(
        sent.elapsed() >= healing::SILENCE,
        "not replaced before {:?} of silence",
        healing::SILENCE
    );
    let mut conn = RedisConnection::SharedCluster(shared.clone());
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("the new connection answers");
    assert_eq!(pong, "PONG");
}

async fn store(cluster: &RedisCluster, durability: Durability) -> JobStore {
    let cfg = Config {
        profile: Profile::Sandbox,
        redis_url: cluster.seed_list(),
        durability,
        replication_timeout_ms: 300,
        ..Config::default()
    };
    JobStore::connect(&cfg)
        .await
        .expect("connect to the cluster")
}

/// With `durability = "async"` (the default) an enqueue is done once the master has it: a
/// master that dies before its replica copied the write takes the job with it. This is the
/// window `replicated` closes.
#[tokio::test(flavor = "multi_thread")]
async fn an_async_write_its_replica_never_saw_is_lost_with_its_master() {
    let mut cluster = RedisCluster::start();
    let s = store(&cluster, Durability::Async).await;
    let kept = s.enqueue(&customer(1), &EnqueueOptions::default()).await;
    let kept = kept.expect("enqueue").id;
    let master = iot_master(&cluster);
    let replica = cluster.replica_of(master);
    cluster.wait_until_in_sync(master, Duration::from_secs(10));

    // The replica stops and its link drops: what the master takes now reaches no replica.
    cluster.pause(replica);
    cluster.cut_replication(master);
    let lost = s.enqueue(&customer(2), &EnqueueOptions::default()).await;
    let lost = lost
        .expect("async: the master alone makes the write done")
        .id;
    cluster.kill(master);
    cluster.resume(replica);
    cluster.wait_until_ok(Duration::from_secs(30));

    let kept = s.status(&kept, false).await;
    assert!(kept.is_ok(), "the replicated job is kept: {kept:?}");
    match s.status(&lost, false).await {
        Err(QueueError::NotFound(_)) => {}
        other => panic!("the write only the dead master had is gone, got {other:?}"),
    }
}

/// With `durability = "replicated"` an enqueue is done only once a replica has it too: with
/// the replica stopped, the enqueue fails (and says a retry with the same key is safe), and
/// once the replica is back the same enqueue succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_replicated_write_is_done_only_once_a_replica_has_it() {
    let cluster = RedisCluster::start();
    let s = store(&cluster, Durability::Replicated).await;
    let first = s.enqueue(&customer(1), &EnqueueOptions::default()).await;
    assert!(first.is_ok(), "with a replica up: {first:?}");

    let replica = cluster.replica_of(iot_master(&cluster));
    cluster.pause(replica);
    let key = EnqueueOptions {
        idempotency_key: Some("signup-2".into()),
        ..Default::default()
    };
    match s.enqueue(&customer(2), &key).await {
        Err(e @ QueueError::NotReplicated { .. }) => {
            assert!(e.to_string().contains("same idempotency key"), "{e}")
        }
        other => panic!("a write no replica confirmed is not done, got {other:?}"),
    }
    cluster.resume(replica);
    let again = s.enqueue(&customer(2), &key).await.expect("confirmed now");
    assert!(s.status(&again.id, false).await.is_ok());
}

/// A worker's acknowledgement no replica confirmed is on the master all the same: it is
/// counted and the worker goes on (sending it again would be refused as stale), rather than
/// failing the outcome the job already has.
#[tokio::test(flavor = "multi_thread")]
async fn an_unconfirmed_acknowledgement_still_ends_the_job() {
    let cluster = RedisCluster::start();
    let s = store(&cluster, Durability::Replicated).await;
    let id = s.enqueue(&customer(1), &EnqueueOptions::default()).await;
    let id = id.expect("enqueue").id;
    let claimed = s
        .fetch(JobKind::CreateCustomer, 1, "w")
        .await
        .expect("claim");
    let job = &claimed.jobs[0];

    let replica = cluster.replica_of(iot_master(&cluster));
    cluster.pause(replica);
    let acked = s
        .ack(
            JobKind::CreateCustomer,
            &job.id,
            &job.token,
            &Ack::Succeeded(serde_json::json!({})),
        )
        .await;
    cluster.resume(replica);
    assert_eq!(acked.expect("recorded on the master"), AckStatus::Succeeded);
    let status = s.status(&id, false).await.expect("status");
    assert_eq!(status.state, JobState::Succeeded);
}

/// `/readyz` answers 503 while part of the cluster cannot be used: a master and its replica
/// both gone leave the IoT queues' slots without a node, though the other nodes answer.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_reports_slots_the_cluster_cannot_serve() {
    let sandbox = Sandbox::start(&[]);
    let mut redis = RedisServer::Cluster(RedisCluster::start());
    let worker = Worker::start(&redis, &sandbox, quick());
    let readyz = worker.metrics_url().replace("/metrics", "/readyz");
    assert_eq!(blocking_http_status(&readyz), 200);

    let RedisServer::Cluster(cluster) = &mut redis else {
        unreachable!("started as a cluster")
    };
    let master = iot_master(cluster);
    let replica = cluster.replica_of(master);
    cluster.kill(replica);
    cluster.kill(master);
    let deadline = Instant::now() + Duration::from_secs(30);
    while blocking_http_status(&readyz) != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz still ready with the IoT slots unserved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
