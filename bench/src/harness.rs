//! Processes and servers the scenarios run against, from `onboard-harness` (shared with the
//! tests and the demo): a private `redis-server` per scenario (never the machine's Redis on
//! 6379), the workspace binaries, `onboard-sandbox` and `onboard-worker`; plus the helpers
//! that wait on a queue.

use anyhow::{bail, Context};
use onboard_harness::{SandboxProcess, WorkerProcess};
use onboard_shared::config::Config;
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, JobStore};
use std::time::{Duration, Instant};

pub use onboard_harness::{binary, target_dir, Process, RedisServer};

/// Starts a private redis-server (`--save "" --appendonly no`, free port, temp dir).
/// Blocking for a moment; done on a blocking thread so the runtime keeps going.
pub async fn start_redis() -> anyhow::Result<RedisServer> {
    tokio::task::spawn_blocking(RedisServer::start)
        .await
        .context("start a private redis-server")
}

/// `FLUSHALL` on a private server, or on every master of a private cluster (between
/// measured runs on the same Redis; replicas follow their masters).
pub async fn flush(redis: &RedisServer) -> anyhow::Result<()> {
    let urls = match redis {
        RedisServer::Single(_) => vec![redis.url()],
        RedisServer::Cluster(cluster) => cluster
            .master_ports()
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}/"))
            .collect(),
    };
    for url in urls {
        let client = redis::Client::open(url)?;
        // No response timeout: flushing a million jobs takes longer than the default 500 ms.
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn)
            .await
            .context("FLUSHALL")?;
    }
    Ok(())
}

/// `used_memory` from `INFO memory` of a private single server (bytes).
pub async fn used_memory(redis: &RedisServer) -> anyhow::Result<u64> {
    let client = redis::Client::open(redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .context("INFO memory")?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no used_memory in INFO memory")
}

/// `MEMORY USAGE key SAMPLES 0` (bytes; 0 when the key does not exist).
pub async fn memory_usage(redis: &RedisServer, key: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let n: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut conn)
        .await
        .context("MEMORY USAGE")?;
    Ok(n.unwrap_or(0))
}

/// A running `onboard-sandbox`.
pub struct Sandbox {
    process: SandboxProcess,
    http: reqwest::Client,
}

impl Sandbox {
    /// Starts `onboard-sandbox --listen 127.0.0.1:0`, with `--no-rate-limits` if asked.
    pub async fn start(rate_limits: bool) -> anyhow::Result<Sandbox> {
        let args: &'static [&'static str] = if rate_limits {
            &[]
        } else {
            &["--no-rate-limits"]
        };
        let process = tokio::task::spawn_blocking(move || SandboxProcess::start(args))
            .await
            .context("start task")??;
        Ok(Sandbox {
            process,
            http: reqwest::Client::new(),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// `GET /_sandbox/stats`.
    pub async fn stats(&self) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .http
            .get(format!("{}/_sandbox/stats", self.url()))
            .send()
            .await
            .context("GET /_sandbox/stats")?;
        resp.json().await.context("sandbox stats are not JSON")
    }

    /// `POST /_sandbox/faults`.
    pub async fn set_faults(&self, faults: serde_json::Value) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/_sandbox/faults", self.url()))
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
    pub fn proc(&self) -> &Process {
        &self.process.process
    }
}

/// Environment for an `onboard-worker` on the sandbox profile against `redis` and, when
/// given, the sandbox at `sandbox_url` with the sandbox credentials; logging warnings only.
pub fn worker_env(redis: &RedisServer, sandbox_url: Option<&str>) -> Vec<(String, String)> {
    let mut env = onboard_harness::worker_env(&redis.url(), sandbox_url);
    env.push(("ONBOARD_LOG".into(), "warn".into()));
    env
}

/// Starts an `onboard-worker` with `env` (see [`worker_env`]) and waits for its ready line.
pub async fn start_worker(env: &[(String, String)]) -> anyhow::Result<Process> {
    let env = env.to_vec();
    let worker = tokio::task::spawn_blocking(move || WorkerProcess::start(&env))
        .await
        .context("start task")??;
    Ok(worker.process)
}

/// A sandbox-profile configuration on `redis` (the provider URLs are unused in-process),
/// with every provider limit off. The in-process workers run no-op handlers that call no
/// provider; since claims admit only what the provider's limit allows, a limit left on
/// would make it the figure (IoT 20/s) instead of the queue. Worker processes get their
/// limits from their own environment (see [`worker_env`]).
pub fn config(redis: &RedisServer) -> Config {
    let mut cfg = Config::for_sandbox("http://127.0.0.1:9", &redis.url());
    let limits = &mut cfg.limits;
    for rate in [
        &mut limits.iot,
        &mut limits.create_account,
        &mut limits.send_verify_code,
        &mut limits.get_country_codes,
        &mut limits.polyv,
    ] {
        *rate = 0.0;
    }
    cfg
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
    Ok(Counts {
        succeeded: stats.succeeded_total,
        dead: stats.dead,
        awaiting_code: stats.awaiting_code,
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

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`; zero
/// when it cannot be read (the process ended).
pub fn proc_cpu(pid: u32) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|text| {
            // The command name (field 2) may hold spaces: count fields after its ')'.
            let rest = &text[text.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    // Linux reports in USER_HZ, 100 per second on every architecture it runs on here.
    Duration::from_millis(ticks * 10)
}

/// The environment of an `onboard-worker` with stubbed providers (answered in-process, no
/// HTTP) and no provider limits (stubs call no provider), `concurrency` slots for each of
/// `kinds` and none for the other kinds.
pub fn stub_worker_env(
    redis: &RedisServer,
    kinds: &[JobKind],
    concurrency: usize,
) -> Vec<(String, String)> {
    let mut env = worker_env(redis, None);
    env.push(("ONBOARD_STUB_PROVIDERS".into(), "true".into()));
    for limit in [
        "IOT",
        "CREATE_ACCOUNT",
        "SEND_VERIFY_CODE",
        "GET_COUNTRY_CODES",
        "POLYV",
    ] {
        env.push((format!("ONBOARD_LIMITS__{limit}"), "0".into()));
    }
    for kind in JobKind::ALL {
        let slots = if kinds.contains(&kind) {
            concurrency
        } else {
            0
        };
        let name = kind.as_str().to_uppercase().replace('-', "_");
        env.push((
            format!("ONBOARD_QUEUE__CONCURRENCY__{name}"),
            slots.to_string(),
        ));
    }
    env
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
