//! The HTTP API end to end: a real `onboard-producer serve` over HTTP against a private
//! redis-server (and the sandbox and a worker where jobs must run). Each error status in the
//! one error shape, idempotency (202, 200, 409), a batch named line by line in its 422, the
//! operator endpoints, an SSE follow to the end, and the verify-code flow over HTTP.

use onboard_tests::api::{ApiServer, TokenSpec};
use onboard_tests::fixtures::quick;
use onboard_tests::{RedisServer, Sandbox, Worker};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A client of one server.
struct Api {
    base: String,
    http: reqwest::Client,
}

/// A response: its status, its `Retry-After`, its body as JSON (`null` if not JSON).
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Api {
    fn new(server: &ApiServer) -> Api {
        Api {
            base: server.url().to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        self.call_with(method, path, token, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        Answer {
            status,
            retry_after,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body.to_string()))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }
}

/// One kind's row of `GET /v1/stats`.
async fn queue_stats(api: &Api, token: &str, kind: &str) -> Value {
    let stats = api.get("/v1/stats", token).await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    stats
        .body
        .as_array()
        .and_then(|all| all.iter().find(|q| q["kind"] == kind).cloned())
        .unwrap_or_else(|| panic!("no {kind} in {}", stats.body))
}

/// Asserts the one error shape and returns its `error` member.
fn error_of(a: &Answer, status: StatusCode, code: &str) -> Value {
    assert_eq!(a.status, status, "{}", a.body);
    let e = a.body["error"].clone();
    assert_eq!(e["code"], code, "{}", a.body);
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        a.body
    );
    assert!(
        e.get("field").is_some(),
        "field is always present: {}",
        a.body
    );
    e
}

fn customer(id: &str) -> Value {
    json!({"customer_id": id, "country_code": "+852", "phone_number": "55501001"})
}

fn app() -> TokenSpec {
    TokenSpec::new("app1", "app").kinds(&["create-customer", "create-account"])
}

fn ops() -> TokenSpec {
    TokenSpec::new("ops", "operator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_has_the_one_shape() {
    let redis = RedisServer::start();
    let slow = TokenSpec::new("slow", "app").rate(1, 2);
    let stranger = TokenSpec::new("other", "app");
    let server = ApiServer::start(
        &redis,
        &[app(), ops(), slow.clone(), stranger.clone()],
        "body_limit_bytes = 4096",
    );
    let api = Api::new(&server);
    let (app, ops) = (app().token, ops().token);

    // 401: no token, a token nobody configured.
    let a = api.call(Method::GET, "/v1/jobs/cust_x", None, None).await;
    error_of(&a, StatusCode::UNAUTHORIZED, "unauthenticated");
    let a = api.get("/v1/jobs/cust_x", "not-a-token").await;
    error_of(&a, StatusCode::UNAUTHORIZED, "unauthenticated");

    // 403: a kind the token may not enqueue; an operator endpoint with the app role.
    let a = api.post("/v1/jobs/register-user", &app, json!({})).await;
    let e = error_of(&a, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        e["message"].as_str().unwrap().contains("register-user"),
        "{e}"
    );
    for path in ["/v1/stats", "/v1/dead-letters"] {
        error_of(
            &api.get(path, &app).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    let a = api
        .post("/v1/queues/create-customer/pause", &app, json!({}))
        .await;
    error_of(&a, StatusCode::FORBIDDEN, "forbidden");

    // 404: an unknown job, a malformed id, an unknown kind, an unknown route.
    let a = api
        .get("/v1/jobs/cust_01M8VP800XBHSS2NJCVMYZDM3G", &app)
        .await;
    error_of(&a, StatusCode::NOT_FOUND, "not_found");
    error_of(
        &api.get("/v1/jobs/nonsense", &app).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let a = api.post("/v1/jobs/make-coffee", &ops, json!({})).await;
    error_of(&a, StatusCode::NOT_FOUND, "not_found");
    error_of(
        &api.get("/v1/nowhere", &app).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // 422: the CLI's rule texts, naming the field; a password is never echoed.
    let a = api
        .post(
            "/v1/jobs/create-customer",
            &app,
            json!({"customer_id": "c 1", "country_code": "852"}),
        )
        .await;
    let e = error_of(&a, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(e["field"], "phone_number", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid create-customer job: phone_number: missing"),
        "{message}"
    );
    assert!(
        message.contains("customer_id: must be 1 to 32 letters, digits or _"),
        "{message}"
    );
    let secret = "hunter2-nosymbol";
    let a = api
        .post(
            "/v1/jobs/create-account",
            &app,
            json!({"account_type": "personal", "mail": "a@example.com", "password": secret,
                   "phone_num": "55501001", "country_code": "852", "area": "HK"}),
        )
        .await;
    let e = error_of(&a, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(e["field"], "password", "{e}");
    assert!(
        !a.body.to_string().contains(secret),
        "the password was echoed: {}",
        a.body
    );
    let a = api
        .call(
            Method::POST,
            "/v1/jobs/create-customer",
            Some(&app),
            Some("{not json".into()),
        )
        .await;
    error_of(&a, StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    // 413 over the body limit.
    let big = json!({"customer_id": "x".repeat(5000)});
    let a = api.post("/v1/jobs/create-customer", &app, big).await;
    error_of(&a, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // 202, then 200 with the first id for the same key and body, 409 for another body.
    let key = [("Idempotency-Key", "signup-42")];
    let post = |body: Value| {
        let api = &api;
        let app = app.clone();
        async move {
            api.call_with(
                Method::POST,
                "/v1/jobs/create-customer",
                Some(&app),
                Some(body.to_string()),
                &key,
            )
            .await
        }
    };
    let first = post(customer("c42")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let id = first.body["id"].as_str().expect("an id").to_string();
    assert!(id.starts_with("cust_"), "{id}");
    let again = post(customer("c42")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(again.body["duplicate"], true);
    let other = post(customer("c43")).await;
    let e = error_of(&other, StatusCode::CONFLICT, "conflict");
    assert_eq!(e["first_id"], id.as_str(), "{e}");
    assert!(e["message"].as_str().unwrap().contains(&id), "{e}");

    // Another app token sees no such job (404, not 403: nothing is revealed); an operator does.
    for path in [format!("/v1/jobs/{id}"), format!("/v1/jobs/{id}/events")] {
        let a = api.get(&path, &stranger.token).await;
        error_of(&a, StatusCode::NOT_FOUND, "not_found");
    }
    let a = api
        .post(
            &format!("/v1/jobs/{id}/resend-code"),
            &stranger.token,
            json!({}),
        )
        .await;
    error_of(&a, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        api.get(&format!("/v1/jobs/{id}"), &ops).await.status,
        StatusCode::OK
    );

    // The job reads back, enqueued in the live lane under the token's name.
    let a = api.get(&format!("/v1/jobs/{id}"), &app).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["state"], "queued");
    let cc = queue_stats(&api, &ops, "create-customer").await;
    assert_eq!(cc["queued_live"], 1, "{cc}");

    // 409: a verify code for a job that awaits none; 422: a code that is not 6 digits.
    let a = api
        .post(
            &format!("/v1/jobs/{id}/verify-code"),
            &app,
            json!({"code": "123456"}),
        )
        .await;
    error_of(&a, StatusCode::CONFLICT, "conflict");
    let a = api
        .post(
            &format!("/v1/jobs/{id}/verify-code"),
            &app,
            json!({"code": "12"}),
        )
        .await;
    let e = error_of(&a, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(e["field"], "code");

    // 429 with Retry-After past the token's rate (1/s, a burst of 2).
    let mut limited = None;
    for _ in 0..10 {
        let a = api.get("/v1/jobs/cust_x", &slow.token).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(a);
            break;
        }
    }
    let a = limited.expect("the third request within a second is over the rate");
    error_of(&a, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let secs: u64 = a
        .retry_after
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&secs), "{secs}");

    // Probes need no token.
    let a = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        !server.logs().contains(secret),
        "the password reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_validated_whole_and_steered_by_operators() {
    let redis = RedisServer::start();
    let other = TokenSpec::new("other", "app");
    let server = ApiServer::start(
        &redis,
        &[app(), ops(), other.clone()],
        "batch_limit_bytes = 100000",
    );
    let api = Api::new(&server);
    let (app, ops) = (app().token, ops().token);
    let upload = |token: String, query: &'static str, body: String| {
        let api = &api;
        async move {
            api.call(
                Method::POST,
                &format!("/v1/batches{query}"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };

    // Every bad line is named; nothing is enqueued.
    let bad = [
        customer("b1").to_string(),
        json!({"customer_id": "b 2", "country_code": "852"}).to_string(),
        "not json".to_string(),
        customer("b4").to_string(),
    ]
    .join("\n");
    let a = upload(app.clone(), "?kind=create-customer", bad).await;
    let e = error_of(&a, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let lines: Vec<(u64, String)> = e["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [(2, "phone_number".to_string()), (3, "-".to_string())],
        "{e}"
    );
    assert!(
        e["errors"][0]["rule"]
            .as_str()
            .unwrap()
            .contains("customer_id: must be 1 to 32"),
        "{e}"
    );
    let stats = api.get("/v1/stats", &ops).await;
    assert!(
        stats
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["enqueued_total"] == 0),
        "{}",
        stats.body
    );

    // 413 past the batch limit, whatever the lines hold.
    let big: String = (0..2_000)
        .map(|i| format!("{}\n", customer(&format!("big{i}"))))
        .collect();
    let a = upload(app.clone(), "?kind=create-customer", big).await;
    error_of(&a, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // A kind the token may not enqueue: 403 naming the line.
    let reg = json!({"kind": "register-user", "email": "u@example.com", "mobile": "13800000001", "passwd": "pw-123456"});
    let a = upload(app.clone(), "", format!("{}\n{reg}\n", json!({"kind": "create-customer", "customer_id": "k1", "country_code": "852", "phone_number": "55501001"}))).await;
    let e = error_of(&a, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(e["errors"][0]["line"], 2, "{e}");

    // A good batch: one bulk batch labelled with the token's name.
    let good: String = (0..50)
        .map(|i| format!("{}\n", customer(&format!("g{i}"))))
        .collect();
    let a = upload(app.clone(), "?kind=create-customer", good.clone()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["new_jobs"], 50);
    let batch = a.body["batch"].as_str().expect("a batch id").to_string();
    let b = api.get(&format!("/v1/batches/{batch}"), &other.token).await;
    error_of(&b, StatusCode::NOT_FOUND, "not_found");
    let b = api.get(&format!("/v1/batches/{batch}"), &app).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(
        (b.body["label"].as_str(), b.body["enqueued"].as_u64()),
        (Some("app1"), Some(50))
    );
    let cc = queue_stats(&api, &ops, "create-customer").await;
    assert_eq!(cc["queued_bulk"], 50, "{cc}");

    // The same upload again enqueues nothing new; a changed line is a conflict.
    let a = upload(app.clone(), "?kind=create-customer", good).await;
    assert_eq!(
        (a.status, a.body["new_jobs"].as_u64()),
        (StatusCode::ACCEPTED, Some(0)),
        "{}",
        a.body
    );
    let changed =
        json!({"customer_id": "g3", "country_code": "852", "phone_number": "55509999"}).to_string();
    let a = upload(app.clone(), "?kind=create-customer", changed).await;
    let e = error_of(&a, StatusCode::CONFLICT, "conflict");
    assert_eq!(e["errors"][0]["line"], 1, "{e}");

    // Steering: operators only.
    let a = api
        .post(&format!("/v1/batches/{batch}/pause"), &app, json!({}))
        .await;
    error_of(&a, StatusCode::FORBIDDEN, "forbidden");
    for (action, state) in [
        ("pause", "paused"),
        ("resume", "active"),
        ("cancel", "cancelled"),
    ] {
        let a = api
            .post(&format!("/v1/batches/{batch}/{action}"), &ops, json!({}))
            .await;
        assert_eq!(
            (a.status, a.body["state"].as_str()),
            (StatusCode::OK, Some(state)),
            "{}",
            a.body
        );
    }
    let a = api
        .post(&format!("/v1/batches/{batch}/resume"), &ops, json!({}))
        .await;
    error_of(&a, StatusCode::CONFLICT, "conflict");
    let a = api.get(&format!("/v1/batches/{batch}"), &ops).await;
    assert_eq!(a.body["cancelled"], 50, "{}", a.body);
    let a = api
        .post(
            "/v1/batches/batch_01M8VP800XBHSS2NJCVMYZDM3G/pause",
            &ops,
            json!({}),
        )
        .await;
    error_of(&a, StatusCode::NOT_FOUND, "not_found");

    // Queue pauses.
    let a = api
        .post("/v1/queues/register-user/pause", &ops, json!({}))
        .await;
    assert_eq!(
        (a.status, a.body["changed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{}",
        a.body
    );
    let ru = queue_stats(&api, &ops, "register-user").await;
    assert_eq!(ru["paused"], true);
    let a = api
        .post("/v1/queues/register-user/resume", &ops, json!({}))
        .await;
    assert_eq!(a.body["state"], "running", "{}", a.body);
}

/// Reads server-sent events off a response, one at a time.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    /// The next event's name and JSON data; `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if name.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("an event within the wait")
                .expect("read the stream")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_follows_jobs_to_the_end_and_codes_are_supplied_over_http() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    let server = ApiServer::start(&redis, &[app(), ops()], "");
    let api = Api::new(&server);
    let (app, ops) = (app().token, ops().token);
    let follow = |id: String| {
        let api = &api;
        let app = app.clone();
        async move {
            let resp = api
                .http
                .get(format!("{}/v1/jobs/{id}/events", api.base))
                .bearer_auth(&app)
                .send()
                .await
                .expect("follow");
            assert_eq!(resp.status(), StatusCode::OK);
            SseReader {
                resp,
                buf: String::new(),
            }
        }
    };

    // A create-account job: texted a code, supplied over HTTP, followed to success.
    let body = json!({"account_type": "personal", "mail": "http1@example.com", "password": "Passw0rd!x",
                      "phone_num": "55501234", "country_code": "852", "area": "HK"});
    let a = api.post("/v1/jobs/create-account", &app, body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    let mut events = follow(id.clone()).await;
    let (first, status) = events.next().await.expect("a first event");
    assert_eq!(
        (first.as_str(), status["id"].as_str()),
        ("status", Some(id.as_str()))
    );
    let mut seen = vec![status["state"].as_str().unwrap().to_string()];
    while seen.last().map(String::as_str) != Some("awaiting_code") {
        let (name, event) = events
            .next()
            .await
            .expect("the job awaits a code before it ends");
        assert_eq!(event["job_id"], id.as_str(), "{event}");
        seen.push(name);
    }
    let code = sandbox
        .latest_code("85255501234")
        .expect("a code was texted");
    let a = api
        .post(
            &format!("/v1/jobs/{id}/verify-code"),
            &app,
            json!({"code": code}),
        )
        .await;
    assert_eq!(
        (a.status, a.body["state"].as_str()),
        (StatusCode::OK, Some("queued")),
        "{}",
        a.body
    );
    while let Some((name, _)) = events.next().await {
        seen.push(name);
    }
    assert_eq!(
        seen.last().map(String::as_str),
        Some("succeeded"),
        "{seen:?}"
    );
    assert!(seen.contains(&"running".to_string()), "{seen:?}");
    let a = api.get(&format!("/v1/jobs/{id}"), &app).await;
    assert_eq!(a.body["state"], "succeeded", "{}", a.body);

    // A create-customer enqueued twice: one of them dies (the customer exists). Then the
    // dead letters: listed, a retry of a live job refused, purged.
    let first = api
        .post("/v1/jobs/create-customer", &app, customer("dup1"))
        .await;
    let second = api
        .post("/v1/jobs/create-customer", &app, customer("dup1"))
        .await;
    let (first, second) = (
        first.body["id"].as_str().unwrap().to_string(),
        second.body["id"].as_str().unwrap().to_string(),
    );
    // Each follow ends by itself, on the state the job ended in.
    let mut states = Vec::new();
    for id in [&first, &second] {
        let mut events = follow(id.clone()).await;
        let mut end = String::new();
        while let Some((name, data)) = events.next().await {
            end = if name == "status" {
                data["state"].as_str().unwrap().to_string()
            } else {
                name
            };
        }
        states.push(end);
    }
    let dead_is_second = states[1] == "dead";
    states.sort();
    assert_eq!(states, ["dead", "succeeded"]);
    let dead_id = if dead_is_second { &second } else { &first };
    let live_id = if dead_id == &first { &second } else { &first };
    let a = api.get("/v1/dead-letters?kind=create-customer", &ops).await;
    let listed: Vec<&str> = a
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(listed, [dead_id.as_str()], "{}", a.body);
    let a = api
        .post("/v1/dead-letters/retry", &ops, json!({"ids": [live_id]}))
        .await;
    error_of(&a, StatusCode::CONFLICT, "conflict");
    let a = api
        .post("/v1/dead-letters/purge", &ops, json!({"ids": [dead_id]}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = api.get(&format!("/v1/jobs/{dead_id}"), &ops).await;
    error_of(&a, StatusCode::NOT_FOUND, "not_found");
}

#[test]
fn python_client_end_to_end() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&[]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    let hook_port = onboard_tests::free_port();
    let hook_url = format!("http://127.0.0.1:{hook_port}/hook");
    let (app, ops, slow, hook) = (
        TokenSpec::new("py-app", "app"),
        TokenSpec::new("py-ops", "operator"),
        TokenSpec::new("py-slow", "app").rate(1, 2),
        TokenSpec::new("py-hook", "app").webhook(&hook_url, "whsec_py"),
    );
    let server = ApiServer::start(
        &redis,
        &[app.clone(), ops.clone(), slow.clone(), hook.clone()],
        "body_limit_bytes = 4096",
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/http_run.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args([
            server.url(),
            sandbox.url(),
            &app.token,
            &ops.token,
            &slow.token,
        ])
        .args([&hook.token, &hook_port.to_string(), "whsec_py"])
        .output()
        .expect("run tests/python/http_run.sh");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the Python client failed (needs python3 and PyPI access on first run):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        server.logs()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
