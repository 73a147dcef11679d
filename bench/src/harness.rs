//! Processes and servers the scenarios run against: a private `redis-server` per scenario
//! (never the machine's Redis on 6379), the workspace binaries (built once, on demand), the
//! `onboard-sandbox` and `onboard-worker` processes, and the helpers that wait on a queue.

use anyhow::{bail, Context};
use onboard_shared::config::Config;
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, JobStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use onboard_tests::RedisServer;

/// Starts a private redis-server (`--save "" --appendonly no`, free port, temp dir).
/// Blocking for a moment; done on a blocking thread so the runtime keeps going.
pub async fn start_redis() -> anyhow::Result<RedisServer> {
    tokio::task::spawn_blocking(RedisServer::start)
        .await
        .context("start a private redis-server")
}

/// `FLUSHALL` on a private server (between measured runs on the same server).
pub async fn flush(redis: &RedisServer) -> anyhow::Result<()> {
    let client = redis::Client::open(redis.url())?;
    // No response timeout: flushing a million jobs takes longer than the default 500 ms.
    let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .context("FLUSHALL")?;
    Ok(())
}

/// The directory holding this executable and its sibling workspace binaries
/// (`target/release` under `cargo run --release`).
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .expect("the path of the running onboard-bench executable")
}

/// The cargo target directory (`target/`), parent of [`bin_dir`].
pub fn target_dir() -> PathBuf {
    let dir = bin_dir();
    dir.parent().map(Path::to_path_buf).unwrap_or(dir)
}

/// The workspace root (where the root `Cargo.toml` is).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Packages built so far in this run, and whether the build worked.
static BUILT: Mutex<Option<HashMap<&'static str, bool>>> = Mutex::new(None);

/// Whether `--no-build` was given: use the binaries already in [`bin_dir`].
static NO_BUILD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Skips the cargo builds (the binaries must already be next to this executable).
pub fn set_no_build(no_build: bool) {
    NO_BUILD.store(no_build, std::sync::atomic::Ordering::Relaxed);
}

/// The path of workspace binary `name` (`onboard-producer`, `onboard-worker`,
/// `onboard-sandbox`), built first with this executable's profile (once per run), so a
/// scenario never runs a stale binary.
pub async fn binary(name: &'static str) -> anyhow::Result<PathBuf> {
    let no_build = NO_BUILD.load(std::sync::atomic::Ordering::Relaxed);
    if !no_build {
        tokio::task::spawn_blocking(move || build_package(name))
            .await
            .context("build task")??;
    }
    let path = bin_dir().join(name);
    if !path.exists() {
        bail!(
            "{} is missing (build it with cargo build --release -p {name})",
            path.display()
        );
    }
    Ok(path)
}

fn build_package(name: &'static str) -> anyhow::Result<()> {
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(ok) = built.get(name) {
        return if *ok {
            Ok(())
        } else {
            bail!("building {name} failed earlier in this run")
        };
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let release = bin_dir().ends_with("release");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "--bin", name, "-p", name]);
    if release {
        cmd.arg("--release");
    }
    eprintln!(
        "onboard-bench: building {name} ({})",
        if release { "release" } else { "debug" }
    );
    let status = cmd.status().context("run cargo build")?;
    built.insert(name, status.success());
    if !status.success() {
        bail!("cargo build -p {name} failed ({status})");
    }
    Ok(())
}

/// Spawns `cmd` and waits for its ready line on stdout (returned). Blocking work on a
/// blocking thread.
async fn spawn_ready(cmd: Command, needle: &'static str) -> anyhow::Result<(Child, String)> {
    tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            onboard_tests::spawn_and_wait(cmd, needle, Duration::from_secs(30))
        }))
        .map_err(|_| anyhow::anyhow!("process did not print `{needle}` (see its log)"))
    })
    .await
    .context("spawn task")?
}

/// A child process killed (SIGKILL) on drop.
pub struct Proc {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stderr so far (last few lines).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_file(dir: &tempfile::TempDir) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let path = dir.path().join("stderr.log");
    let file = std::fs::File::create(&path).context("log file")?;
    Ok((path, file))
}

/// A running `onboard-sandbox`.
pub struct Sandbox {
    proc: Proc,
    url: String,
    http: reqwest::Client,
}

impl Sandbox {
    /// Starts `onboard-sandbox --listen 127.0.0.1:0`, with `--no-rate-limits` if asked.
    pub async fn start(rate_limits: bool) -> anyhow::Result<Sandbox> {
        let bin = binary("onboard-sandbox").await?;
        let dir = tempfile::tempdir()?;
        let (log, file) = log_file(&dir)?;
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", "127.0.0.1:0"]);
        if !rate_limits {
            cmd.arg("--no-rate-limits");
        }
        cmd.env("ONBOARD_LOG", "warn").stderr(file);
        let (child, line) = spawn_ready(cmd, "listening on").await?;
        let url = line
            .split_whitespace()
            .last()
            .map(|u| u.trim_end_matches('/').to_string())
            .context("the sandbox prints its URL")?;
        Ok(Sandbox {
            proc: Proc {
                child,
                log,
                _dir: dir,
            },
            url,
            http: reqwest::Client::new(),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /_sandbox/stats`.
    pub async fn stats(&self) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .http
            .get(format!("{}/_sandbox/stats", self.url))
            .send()
            .await
            .context("GET /_sandbox/stats")?;
        resp.json().await.context("sandbox stats are not JSON")
    }

    /// `POST /_sandbox/faults`.
    pub async fn set_faults(&self, faults: serde_json::Value) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/_sandbox/faults", self.url))
            .json(&faults)
            .send()
            .await
            .context("POST /_sandbox/faults")?;
        if !resp.status().is_success() {
            bail!("POST /_sandbox/faults answered {}", resp.status());
        }
        Ok(())
    }

    /// The process (for its log).
    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

/// Environment for an `onboard-worker` on the sandbox profile against `redis` and, when
/// given, the sandbox at `sandbox_url` with the sandbox credentials.
pub fn worker_env(redis: &RedisServer, sandbox_url: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(&str, String)> = vec![
        ("ONBOARD_PROFILE", "sandbox".into()),
        ("ONBOARD_REDIS_URL", redis.url()),
        ("ONBOARD_METRICS_LISTEN", "127.0.0.1:0".into()),
        ("ONBOARD_LOG", "warn".into()),
    ];
    if let Some(base) = sandbox_url {
        env.extend(Config::sandbox_provider_env(base));
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Starts an `onboard-worker` with `env` (see [`worker_env`]) and waits for its ready line.
pub async fn start_worker(env: &[(String, String)]) -> anyhow::Result<Proc> {
    let bin = binary("onboard-worker").await?;
    let dir = tempfile::tempdir()?;
    let (log, file) = log_file(&dir)?;
    let mut cmd = Command::new(bin);
    // Nothing from the calling shell's ONBOARD_* leaks in.
    for (k, _) in std::env::vars() {
        if k.starts_with("ONBOARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v))).stderr(file);
    let (child, _) = spawn_ready(cmd, "onboard-worker ready").await?;
    Ok(Proc {
        child,
        log,
        _dir: dir,
    })
}

/// A sandbox-profile configuration on `redis` (the provider URLs are unused in-process).
pub fn config(redis: &RedisServer) -> Config {
    Config::for_sandbox("http://127.0.0.1:9", &redis.url())
}

/// Connects a [`JobStore`] to `redis`.
pub async fn store(redis: &RedisServer) -> anyhow::Result<JobStore> {
    JobStore::connect(&config(redis))
        .await
        .context("connect the job store")
}

/// Enqueues `jobs` with the library path in chunks of `chunk`; returns the time it took.
pub async fn enqueue_chunks(
    store: &JobStore,
    jobs: &[(Job, EnqueueOptions)],
    chunk: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for part in jobs.chunks(chunk) {
        store.enqueue_many(part).await.context("enqueue_many")?;
    }
    Ok(start.elapsed())
}

/// A count of one queue's states.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Succeeded so far.
    pub succeeded: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Awaiting a verify code.
    pub awaiting_code: u64,
}

/// The counts of queue `kind`.
pub async fn counts(store: &JobStore, kind: JobKind) -> anyhow::Result<Counts> {
    let stats = store.queue_stats(kind).await.context("queue_stats")?;
    let get = |k: &str| stats.states.get(k).copied().unwrap_or(0);
    Ok(Counts {
        succeeded: get("succeeded_total"),
        dead: get("dead"),
        awaiting_code: get("awaiting_code"),
    })
}

/// Polls `queue_stats` every 50 ms until `n` jobs of `kind` succeeded; fails when a job is
/// dead-lettered or after `timeout`. Returns the time from the call.
pub async fn wait_succeeded(
    store: &JobStore,
    kind: JobKind,
    n: u64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let c = counts(store, kind).await?;
        if c.dead > 0 {
            bail!("{} {kind} job(s) were dead-lettered", c.dead);
        }
        if c.succeeded >= n {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!(
                "only {} of {n} {kind} jobs succeeded within {timeout:?}",
                c.succeeded
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resident set size figures of a process from `/proc/<pid>/status`, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Jobs per second, 0 for a zero duration.
pub fn rate(n: u64, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}
