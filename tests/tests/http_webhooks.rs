//! Webhooks end to end: a token with a callback URL gets every terminal state of its jobs
//! POSTed, signed (`Onboard-Signature: t=..,v1=HMAC-SHA256("t.body")`), with an event id
//! to deduplicate on; a receiver that fails its first deliveries gets them again until it
//! takes them, and one that never answers is retried until the attempts run out.

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use onboard_tests::api::{ApiServer, TokenSpec};
use onboard_tests::fixtures::quick;
use onboard_tests::{RedisServer, Sandbox, Worker};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_test_secret";
const FAST: &str = "webhook_timeout_ms = 300\nwebhook_backoff_base_ms = 50\nwebhook_backoff_cap_ms = 100\nwebhook_max_attempts = 3";

/// One delivery as a receiver saw it.
#[derive(Debug)]
struct Seen {
    attempt: usize,
    event_id: String,
    signature: String,
    body: String,
}

/// A receiver that answers 500 to its first `failures` deliveries, then 200.
async fn flaky_receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (tx, count) = (tx.clone(), count.clone());
            async move {
                let attempt = count.fetch_add(1, Ordering::SeqCst) + 1;
                let header = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let _ = tx.send(Seen {
                    attempt,
                    event_id: header("onboard-event-id"),
                    signature: header("onboard-signature"),
                    body,
                });
                if attempt <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// True when `signature` is `t=<t>,v1=<hex HMAC-SHA256 of "t.body">` under `secret`.
fn signed(signature: &str, body: &str, secret: &str) -> bool {
    let Some((t, v1)) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::decode(v1).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a delivery within the wait")
        .expect("the receiver runs")
}

async fn post(server: &ApiServer, path: &str, token: &str, body: String) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    resp.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_and_retried_until_the_receiver_takes_them() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    let (url, mut rx) = flaky_receiver(2).await;
    let hooked = TokenSpec::new("hooked", "app").webhook(&url, SECRET);
    let server = ApiServer::start(&redis, std::slice::from_ref(&hooked), FAST);

    let customer =
        json!({"customer_id": "wh_1", "country_code": "852", "phone_number": "55501001"});
    let id = post(
        &server,
        "/v1/jobs/create-customer",
        &hooked.token,
        customer.to_string(),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Two failures, then taken: the same event three times, each signed afresh.
    let seen = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    assert_eq!(
        seen.iter().map(|s| s.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for s in &seen {
        assert_eq!(s.event_id, seen[0].event_id, "{seen:?}");
        assert!(
            signed(&s.signature, &s.body, SECRET),
            "bad signature: {s:?}"
        );
        assert!(!signed(&s.signature, &s.body, "another-secret"));
    }
    let body: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(body["id"], seen[0].event_id.as_str());
    assert!(body["id"].as_str().unwrap().starts_with("evt_"), "{body}");
    assert_eq!(body["type"], "job.succeeded", "{body}");
    assert_eq!(body["data"]["job_id"], id.as_str(), "{body}");

    // A batch's jobs are delivered too, one event each.
    let lines: String = (2..4)
        .map(|i| format!("{}\n", json!({"customer_id": format!("wh_{i}"), "country_code": "852", "phone_number": format!("5550100{i}")})))
        .collect();
    let up = post(
        &server,
        "/v1/batches?kind=create-customer",
        &hooked.token,
        lines,
    )
    .await;
    assert_eq!(up["new_jobs"], 2, "{up}");
    let (a, b) = (next(&mut rx).await, next(&mut rx).await);
    assert_ne!(a.event_id, b.event_id);
    let jobs: Vec<String> = [&a, &b]
        .iter()
        .map(|s| {
            serde_json::from_str::<Value>(&s.body).unwrap()["data"]["job_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        jobs.iter().all(|j| j.starts_with("cust_") && *j != id),
        "{jobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_is_retried_until_the_attempts_run_out() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    // Accepts, reads the request, never answers (the sockets are kept open).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let event = head
                .lines()
                .find_map(|l| {
                    // Header names are case-insensitive, values are not (ids hold a ULID).
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("onboard-event-id")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_default();
            let _ = tx.send(event);
            held.push(socket);
        }
    });
    let hooked = TokenSpec::new("silent", "app").webhook(&url, SECRET);
    let server = ApiServer::start(&redis, std::slice::from_ref(&hooked), FAST);
    let customer =
        json!({"customer_id": "wh_9", "country_code": "852", "phone_number": "55501009"});
    post(
        &server,
        "/v1/jobs/create-customer",
        &hooked.token,
        customer.to_string(),
    )
    .await;

    let mut events = Vec::new();
    for _ in 0..3 {
        let e = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an attempt")
            .unwrap();
        events.push(e);
    }
    assert!(events[0].starts_with("evt_"), "{events:?}");
    assert!(
        events.iter().all(|e| *e == events[0]),
        "the same event each time: {events:?}"
    );

    // After the last attempt the delivery is given up and kept on the dead list.
    let mut conn = redis.connection();
    let deadline = Instant::now() + WAIT;
    loop {
        let dead: Vec<String> = redis::cmd("LRANGE")
            .arg("{onboard:webhooks}:dead")
            .arg(0)
            .arg(-1)
            .query(&mut conn)
            .unwrap();
        if dead == [events[0].clone()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not given up: {dead:?}; log:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // No fourth attempt was made.
    assert!(rx.try_recv().is_err());
}
