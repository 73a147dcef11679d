//! What operators rely on: the metrics match what happened, health endpoints tell the truth,
//! logs carry no secrets, the events stream has the documented shape, and the deployment
//! files (Prometheus config, alert rules, Grafana dashboard) are valid and name real metrics.

use onboard_shared::events::STREAM_KEY as EVENTS_KEY;
use onboard_shared::jobs::*;
use onboard_shared::queue::ids::kind_of_id;
use onboard_shared::queue::*;
use onboard_shared::secret::Secret;
use onboard_tests::fixtures::*;
use onboard_tests::scrape::{scrape, sum, Sample};
use onboard_tests::{blocking_http_status, wait_all, RedisServer, Sandbox, Worker, WorkerOptions};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// Scrapes until `ready` holds: queue gauges are sampled from Redis once a second, so they
/// trail the events by up to a second. Bounded by a deadline, never a fixed sleep.
fn scrape_until(url: &str, ready: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(url);
        if ready(&samples) || Instant::now() > deadline {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every `onboard_*` metric name in a text (a query, a rule file).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("onboard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Runs 3 customers to success and a duplicate to a permanent failure; returns the worker's
/// metrics once the gauges caught up, with the worker still running.
async fn run_known_workload(redis: &RedisServer, worker: &Worker) -> Vec<Sample> {
    let p = producer(redis).await;
    let mut ids = enqueue_all(&p, (1..=3).map(customer).collect()).await;
    wait_all(&p, &ids, WAIT).await;
    // Same customer id again: the sandbox refuses it as the real service would.
    ids.push(
        p.enqueue(&customer(1), &Default::default())
            .await
            .unwrap()
            .id,
    );
    let done = wait_all(&p, &ids, WAIT).await;
    let states: Vec<_> = done.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            JobState::Succeeded,
            JobState::Succeeded,
            JobState::Succeeded,
            JobState::Dead
        ]
    );
    scrape_until(worker.metrics_url(), |s| {
        sum(
            s,
            "onboard_queue_jobs",
            &[("kind", "create-customer"), ("state", "succeeded")],
        ) == 3.0
            && sum(
                s,
                "onboard_jobs_enqueued_total",
                &[("kind", "create-customer")],
            ) == 4.0
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_happened_and_name_nobody() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    // Default limits, so the rate-limit histogram is fed too.
    let worker = Worker::start(&redis, &sandbox, WorkerOptions::default());
    let m = run_known_workload(&redis, &worker).await;
    let cc = ("kind", "create-customer");
    assert_eq!(sum(&m, "onboard_jobs_enqueued_total", &[cc]), 4.0);
    assert_eq!(
        sum(
            &m,
            "onboard_jobs_finished_total",
            &[cc, ("outcome", "succeeded")]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &m,
            "onboard_jobs_finished_total",
            &[cc, ("outcome", "dead")]
        ),
        1.0
    );
    assert_eq!(
        sum(&m, "onboard_job_attempts_total", &[cc, ("result", "ok")]),
        3.0
    );
    assert_eq!(
        sum(
            &m,
            "onboard_job_attempts_total",
            &[cc, ("result", "permanent")]
        ),
        1.0
    );
    assert_eq!(sum(&m, "onboard_job_duration_seconds_count", &[cc]), 4.0);
    let create = [("provider", "iot"), ("action", "ServiceCreateCustomer")];
    assert_eq!(
        sum(
            &m,
            "onboard_provider_requests_total",
            &[create[0], create[1], ("code", "OK")]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &m,
            "onboard_provider_requests_total",
            &[create[0], create[1], ("code", "InvalidParameterValue")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "onboard_provider_request_duration_seconds_count",
            &create
        ),
        4.0
    );
    assert_eq!(
        sum(&m, "onboard_rate_limit_wait_seconds_count", &create),
        4.0
    );
    assert_eq!(sum(&m, "onboard_queue_jobs", &[cc, ("state", "dead")]), 1.0);
    assert_eq!(sum(&m, "onboard_awaiting_code_jobs", &[]), 0.0);

    // No label ever carries a phone, e-mail, customer id or job id.
    for s in &m {
        for value in s.labels.values() {
            assert!(
                !value.contains('@') && !value.contains("cust_") && !value.contains("139000"),
                "personal data in a label: {s:?}"
            );
            assert!(kind_of_id(value).is_none(), "a job id in a label: {s:?}");
        }
    }

    // The deployment files only query metrics the worker exports.
    let exported: BTreeSet<String> = m
        .iter()
        .map(|s| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .fold(s.name.clone(), |n, suffix| {
                    n.strip_suffix(suffix).map(str::to_string).unwrap_or(n)
                })
        })
        .collect();
    let dashboard_text =
        std::fs::read_to_string(repo().join("deploy/grafana/dashboards/onboard.json")).unwrap();
    let dashboard: serde_json::Value =
        serde_json::from_str(&dashboard_text).expect("the dashboard is valid JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels")
    {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(
                target["expr"]
                    .as_str()
                    .expect("each target has an expr")
                    .to_string(),
            );
        }
    }
    assert!(
        queries.len() >= 6,
        "throughput, failures, depth, age, waits, codes: {queries:?}"
    );
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    let wanted = metric_names(&(queries.join("\n") + rules.as_str()));
    assert!(!wanted.is_empty());
    let base = |n: &str| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .fold(n.to_string(), |n, suffix| {
                n.strip_suffix(suffix).map(str::to_string).unwrap_or(n)
            })
    };
    let missing: Vec<_> = wanted
        .iter()
        .filter(|n| !exported.contains(&base(n)))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}; exported: {exported:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_redis() {
    let mut redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let worker = Worker::start(&redis, &sandbox, quick());
    let base = worker
        .metrics_url()
        .trim_end_matches("/metrics")
        .to_string();
    assert_eq!(blocking_http_status(&format!("{base}/healthz")), 200);
    assert_eq!(blocking_http_status(&format!("{base}/readyz")), 200);
    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocking_http_status(&format!("{base}/readyz")) != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz still ready with Redis down"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        blocking_http_status(&format!("{base}/healthz")),
        200,
        "alive all the same"
    );
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while blocking_http_status(&format!("{base}/readyz")) != 200 {
        assert!(
            Instant::now() < deadline,
            "/readyz did not recover with Redis back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Housekeeping that fails says so: it is counted, and after three failed rounds in a row
/// `/readyz` answers 503 although Redis answers pings.
#[tokio::test(flavor = "multi_thread")]
async fn failing_housekeeping_makes_the_worker_unready() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    // A Redis user who may not run scripts: PING works, every housekeeping round fails.
    let mut admin = redis.connection();
    redis::cmd("ACL")
        .arg(&["SETUSER", "noscripts", "on", ">pw", "~*", "&*", "+@all"])
        .arg(&["-eval", "-evalsha", "-eval_ro", "-evalsha_ro"])
        .query::<()>(&mut admin)
        .unwrap();
    let url = format!("redis://noscripts:pw@127.0.0.1:{}/", redis.port());
    let worker = Worker::start(&redis, &sandbox, quick().env("ONBOARD_REDIS_URL", url));
    let base = worker
        .metrics_url()
        .trim_end_matches("/metrics")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while blocking_http_status(&format!("{base}/readyz")) != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz still ready while housekeeping fails"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = scrape(worker.metrics_url());
    assert!(sum(&m, "onboard_sweeper_errors_total", &[]) >= 3.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_of_a_full_run_hold_no_secrets() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let worker = Worker::start(
        &redis,
        &sandbox,
        quick()
            .env("ONBOARD_LOG", "debug")
            .env("ONBOARD_LOG_FORMAT", "json"),
    );
    let p = producer(&redis).await;
    let ids = enqueue_all(&p, vec![customer(7), user(7), account(7)]).await;
    let first = wait_all(&p, &ids, WAIT).await;
    assert_eq!(first[2].state, JobState::AwaitingCode);
    let Job::CreateAccount(acct) = account(7) else {
        unreachable!()
    };
    let phone = format!("{}{}", acct.country_code, acct.phone_num);
    let code = sandbox.latest_code(&phone).expect("a code was texted");
    p.supply_code(&ids[2], &Secret::new(code.clone()))
        .await
        .unwrap();
    let done = wait_all(&p, &ids, WAIT).await;
    assert!(
        done.iter().all(|s| s.state == JobState::Succeeded),
        "{done:?}"
    );
    let revealed = p.status(&ids[1], true).await.unwrap();
    let app_secret = revealed.result.as_ref().unwrap()["app_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!app_secret.is_empty());

    let logs = worker.logs();
    // The logs exist and say which job each line is about.
    for id in &ids {
        assert!(logs.contains(id.as_str()), "no log line names job {id}");
    }
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
            panic!("ONBOARD_LOG_FORMAT=json wrote a non-JSON line ({e}): {line}")
        });
    }
    let Job::RegisterUser(u) = user(7) else {
        unreachable!()
    };
    let Job::CreateCustomer(c) = customer(7) else {
        unreachable!()
    };
    let secrets = [
        ("CreateAccount password", acct.password.expose().to_string()),
        ("POLYV passwd", u.passwd.expose().to_string()),
        ("returned POLYV appSecret", app_secret),
        ("verify code", code),
        (
            "TC SecretKey",
            onboard_shared::config::sandbox_defaults::TC_SECRET_KEY.to_string(),
        ),
        (
            "IoT AppSecret",
            onboard_shared::config::sandbox_defaults::IOT_APP_SECRET.to_string(),
        ),
        (
            "POLYV appSecret",
            onboard_shared::config::sandbox_defaults::POLYV_APP_SECRET.to_string(),
        ),
        ("e-mail", u.email.clone()),
        ("mail", acct.mail.clone()),
        ("phone", acct.phone_num.clone()),
        ("mobile", u.mobile.clone()),
        ("phone number", c.phone_number.clone()),
    ];
    for (what, value) in secrets {
        assert!(
            !logs.contains(&value),
            "the {what} appears in the worker's logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_stream_tells_each_state_change() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    let p = producer(&redis).await;
    let id = p
        .enqueue(&customer(9), &Default::default())
        .await
        .unwrap()
        .id;
    assert_eq!(p.wait(&id, WAIT).await.unwrap().state, JobState::Succeeded);
    let mut conn = redis.connection();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(EVENTS_KEY)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    let mine: Vec<_> = entries
        .ids
        .iter()
        .filter(|e| e.get::<String>("job_id").as_deref() == Some(id.as_str()))
        .collect();
    let states: Vec<String> = mine.iter().map(|e| e.get("state").unwrap()).collect();
    assert_eq!(states, ["queued", "running", "succeeded"], "{mine:?}");
    for e in &mine {
        assert_eq!(e.get::<String>("kind").as_deref(), Some("create-customer"));
        let at: u64 = e.get("at_ms").expect("every event has at_ms");
        assert!(at > 1_700_000_000_000);
    }
    assert_eq!(mine[1].get::<u32>("attempt"), Some(1));
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    let dir = repo().join("deploy/prometheus");
    for args in [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool is installed (Debian package prometheus; .ci/run installs it)");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
