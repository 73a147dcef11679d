//! The end-to-end test harness: real processes on loopback (from `onboard-harness`, shared
//! with the benchmarks and the demo), with blocking helpers for the tests: the sandbox's
//! admin endpoints, a worker with test options, and waiting on many jobs.

pub mod api;
pub mod fixtures;
pub mod scrape;

pub use onboard_harness::{free_port, RedisCluster, RedisServer};
use onboard_harness::{SandboxProcess, WorkerProcess};
use std::path::PathBuf;
use std::time::Duration;

/// Puts `id` at the end of `kind`'s live lane (the default source) as the queue would: the
/// list, and its ring entry when the list was empty. For tests that plant records by hand.
pub fn push_ready(
    conn: &mut impl redis::ConnectionLike,
    kind: onboard_shared::jobs::JobKind,
    id: &str,
) {
    use onboard_shared::queue::{keys::QueueKeys, Lane};
    use redis::Commands;
    let keys = QueueKeys::new(kind);
    let n: usize = conn
        .rpush(keys.ready(Lane::Live, "default"), id)
        .expect("push a ready id");
    if n == 1 {
        let _: () = conn
            .sadd(keys.sources(), "live:default")
            .expect("record the list");
        let _: () = conn
            .rpush(keys.provider().ring(Lane::Live), keys.ring_entry("default"))
            .expect("join the ring");
    }
}

/// The path of a workspace binary (`onboard-sandbox`, `onboard-worker`,
/// `onboard-producer`), built fresh once per test process.
pub fn bin(name: &str) -> PathBuf {
    onboard_harness::binary(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A running `onboard-sandbox`.
pub struct Sandbox {
    process: SandboxProcess,
}

impl Sandbox {
    /// Starts the sandbox on a free port with extra command-line arguments.
    pub fn start(args: &[&str]) -> Sandbox {
        Sandbox {
            process: SandboxProcess::start(args).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// `GET /_sandbox/stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.get("/_sandbox/stats")
    }

    /// The latest code texted to `phone` (`<CountryCode><PhoneNum>`).
    pub fn latest_code(&self, phone: &str) -> Option<String> {
        self.get(&format!("/_sandbox/sms?phone={phone}"))["latest"]
            .as_str()
            .map(str::to_string)
    }

    /// Replaces the fault settings (`POST /_sandbox/faults`).
    pub fn set_faults(&self, faults: serde_json::Value) {
        let resp = blocking_http(
            "POST",
            &format!("{}/_sandbox/faults", self.url()),
            Some(&faults),
        );
        assert!(resp.is_object() || resp.is_null(), "faults: {resp}");
    }

    /// `GET <path>` as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        blocking_http("GET", &format!("{}{}", self.url(), path), None)
    }
}

/// Runs `fut` to completion on a fresh runtime in its own thread, so synchronous helpers
/// work both in plain tests and inside `#[tokio::test]` (where nesting a runtime panics).
pub fn block_on_own_thread<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fut)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A blocking JSON request on loopback; a body that is not JSON reads as `null`.
pub fn blocking_http(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let (method, url, body) = (method.to_string(), url.to_string(), body.cloned());
    block_on_own_thread(async move {
        let client = reqwest::Client::new();
        let req = match method.as_str() {
            "POST" => client
                .post(&url)
                .json(&body.unwrap_or(serde_json::Value::Null)),
            _ => client.get(&url),
        };
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = resp.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    })
}

/// A blocking GET that returns only the HTTP status (0 when nothing answers).
pub fn blocking_http_status(url: &str) -> u16 {
    let url = url.to_string();
    block_on_own_thread(async move {
        match reqwest::get(&url).await {
            Ok(resp) => resp.status().as_u16(),
            Err(_) => 0,
        }
    })
}

/// A running `onboard-worker`.
pub struct Worker {
    process: WorkerProcess,
}

/// How to start a worker.
#[derive(Clone, Debug, Default)]
pub struct WorkerOptions {
    /// Extra `ONBOARD_*` (or other) environment variables.
    pub env: Vec<(String, String)>,
    /// The worker's clock, shifted by this much (`faketime -f`, e.g. `+30s`).
    pub clock_offset: Option<String>,
}

impl WorkerOptions {
    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the worker with its clock shifted by `offset` (`+30s`, `-30s`).
    pub fn clock_offset(mut self, offset: &str) -> Self {
        self.clock_offset = Some(offset.to_string());
        self
    }
}

impl Worker {
    /// Starts a worker on the sandbox profile against `redis` and `sandbox`.
    pub fn start(redis: &RedisServer, sandbox: &Sandbox, opts: WorkerOptions) -> Worker {
        let mut env = onboard_harness::worker_env(&redis.url(), Some(sandbox.url()));
        env.extend(opts.env);
        Worker {
            process: WorkerProcess::start_with_clock(&env, opts.clock_offset.as_deref())
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// `http://127.0.0.1:<port>/metrics`.
    pub fn metrics_url(&self) -> &str {
        &self.process.metrics_url
    }

    /// Everything the worker logged so far.
    pub fn logs(&self) -> String {
        self.process.process.log()
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        self.process.process.kill9();
    }

    /// SIGTERM, then waits (up to `timeout`) for the process to exit; returns whether it
    /// exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.process.process.terminate(timeout)
    }
}

/// Waits until every job in `ids` is settled (final, or awaiting a code), following the
/// events stream; panics with the stragglers' states after `timeout`.
pub async fn wait_all(
    producer: &onboard_producer::Producer,
    ids: &[String],
    timeout: Duration,
) -> Vec<onboard_shared::queue::JobStatus> {
    let mut jobs = producer.follow(ids).await.expect("follow the jobs");
    let open = jobs.settle(timeout, |_| {}).await.expect("follow the jobs");
    if open > 0 {
        let stragglers: Vec<_> = jobs
            .states()
            .iter()
            .filter(|(_, s)| !s.is_settled())
            .take(20)
            .collect();
        panic!("{open} job(s) did not finish within {timeout:?}: {stragglers:?}");
    }
    jobs.statuses(ids).await.expect("read the jobs' statuses")
}
