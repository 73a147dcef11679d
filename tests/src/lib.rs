//! The end-to-end test harness: real processes on loopback, each torn down on drop.
//!
//! * [`RedisServer`]: a private `redis-server` on a free port with its own data directory
//!   (never the machine's Redis on 6379), optionally with the append-only file on, and
//!   restartable on the same port and data;
//! * process helpers to start `onboard-sandbox` and `onboard-worker` and wait for the line
//!   each prints when it is ready (an event, not a sleep).

pub mod fixtures;
pub mod scrape;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// Spawns `cmd` with stdout piped and waits until a stdout line contains `needle`, returning
/// that line. The rest of stdout keeps draining in the background (to `log` if given).
pub fn spawn_and_wait(mut cmd: Command, needle: &str, timeout: Duration) -> (Child, String) {
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let needle = needle.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && line.contains(&needle) {
                let _ = tx.send(line.clone());
                sent = true;
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(line) => (child, line),
        Err(_) => {
            let _ = child.kill();
            panic!("{cmd:?} did not print a line containing the ready marker within {timeout:?}")
        }
    }
}

/// A private redis-server.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    append_only: bool,
}

impl RedisServer {
    /// Starts one without persistence.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// Starts one with the append-only file on (`appendfsync always`) when `append_only`.
    pub fn start_with(append_only: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir for redis data");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            append_only,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .stderr(Stdio::null());
        if self.append_only {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let (child, _) =
            spawn_and_wait(cmd, "Ready to accept connections", Duration::from_secs(20));
        self.child = Some(child);
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server abruptly (SIGKILL): with the append-only file (fsync always), every
    /// acknowledged write survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A plain synchronous connection for assertions.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The directory cargo puts the workspace's binaries in (target/debug or target/release),
/// found from this test executable's own path.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-exe>
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(Path::to_path_buf)
        .expect("target/<profile> directory")
}

/// The path of a workspace binary (`onboard-sandbox`, `onboard-worker`,
/// `onboard-producer`), built fresh once per test process with the same profile as the
/// tests (cargo runs tests with `CARGO` set), so a test never runs a stale binary.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = bin_dir().ends_with("release");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "--bins",
            "-p",
            "onboard-worker",
            "-p",
            "onboard-sandbox",
            "-p",
            "onboard-producer",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the binaries");
        assert!(status.success(), "building the onboard binaries failed");
    });
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing after the build",
        path.display()
    );
    path
}

/// A running `onboard-sandbox`.
pub struct Sandbox {
    child: Child,
    url: String,
}

impl Sandbox {
    /// Starts the sandbox on a free port with extra command-line arguments.
    pub fn start(args: &[&str]) -> Sandbox {
        let mut cmd = Command::new(bin("onboard-sandbox"));
        cmd.args(["--listen", "127.0.0.1:0"]).args(args);
        cmd.env_remove("ONBOARD_LOG").stderr(Stdio::null());
        let (child, line) = spawn_and_wait(cmd, "listening on", Duration::from_secs(20));
        let url = line
            .split_whitespace()
            .last()
            .expect("the sandbox prints its URL")
            .trim_end_matches('/')
            .to_string();
        Sandbox { child, url }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
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
            &format!("{}/_sandbox/faults", self.url),
            Some(&faults),
        );
        assert!(resp.is_object() || resp.is_null(), "faults: {resp}");
    }

    /// `GET <path>` as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        blocking_http("GET", &format!("{}{}", self.url, path), None)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    child: Option<Child>,
    metrics_url: String,
    stderr_log: PathBuf,
    _logdir: tempfile::TempDir,
}

/// How to start a worker.
#[derive(Clone, Debug, Default)]
pub struct WorkerOptions {
    /// Extra `ONBOARD_*` (or other) environment variables.
    pub env: Vec<(String, String)>,
}

impl WorkerOptions {
    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

impl Worker {
    /// Starts a worker on the sandbox profile against `redis` and `sandbox`.
    pub fn start(redis: &RedisServer, sandbox: &Sandbox, opts: WorkerOptions) -> Worker {
        let logdir = tempfile::tempdir().expect("log dir");
        let stderr_log = logdir.path().join("worker.log");
        let stderr = std::fs::File::create(&stderr_log).expect("worker log file");
        let base = sandbox.url();
        let mut cmd = Command::new(bin("onboard-worker"));
        cmd.env("ONBOARD_PROFILE", "sandbox")
            .env("ONBOARD_REDIS_URL", redis.url())
            .env("ONBOARD_METRICS_LISTEN", "127.0.0.1:0")
            .envs(onboard_shared::config::Config::sandbox_provider_env(base))
            .env("ONBOARD_LOG", "info")
            .stderr(stderr);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let (child, line) = spawn_and_wait(cmd, "onboard-worker ready", Duration::from_secs(30));
        let metrics_url = line
            .split_whitespace()
            .last()
            .expect("the worker prints its metrics URL")
            .to_string();
        Worker {
            child: Some(child),
            metrics_url,
            stderr_log,
            _logdir: logdir,
        }
    }

    /// `http://127.0.0.1:<port>/metrics`.
    pub fn metrics_url(&self) -> &str {
        &self.metrics_url
    }

    /// Everything the worker logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (up to `timeout`) for the process to exit; returns whether it
    /// exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let pid = child.id();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait().map(|s| s.success()).unwrap_or(false));
        });
        match rx.recv_timeout(timeout) {
            Ok(success) => success,
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                false
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits until every job in `ids` is in a final state (or awaiting a code), following the
/// events stream; panics with the stragglers' states after `timeout`.
pub async fn wait_all(
    producer: &onboard_producer::Producer,
    ids: &[String],
    timeout: Duration,
) -> Vec<onboard_shared::queue::JobStatus> {
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match producer.wait(id, left).await {
            Ok(s) => out.push(s),
            Err(e) => panic!("job {id} did not finish: {e}"),
        }
    }
    out
}
