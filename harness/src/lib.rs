//! The process harness: what the tests, the benchmarks and the demo start on one machine,
//! each process torn down on drop.
//!
//! * [`RedisServer`]: a private `redis-server` on a free port with its own data directory
//!   (never the machine's Redis on 6379), optionally with the append-only file on, and
//!   restartable on the same port and data;
//! * [`RedisCluster`]: three masters and three replicas on loopback, for the cluster suites;
//! * [`binary`]: the workspace binaries, built fresh once per process under cargo;
//! * [`SandboxProcess`] and [`WorkerProcess`]: `onboard-sandbox` and `onboard-worker`,
//!   started and awaited through the ready line each prints ([`onboard_shared::ready`]): an
//!   event, never a sleep;
//! * [`browser::Browser`] (feature `browser`): a headless Chromium over WebDriver, for the
//!   operator console's browser tests.

mod binaries;
#[cfg(feature = "browser")]
pub mod browser;
mod process;
mod redis_cluster;
mod redis_server;

pub use binaries::{binary, set_no_build, target_dir};
pub use process::{free_port, spawn_ready, Process};
pub use redis_cluster::{Persistence, RedisCluster};
pub use redis_server::{RedisServer, SingleServer, TestConnection, TEST_REDIS_ENV};

use std::process::Command;
use std::time::Duration;

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HarnessError(pub String);

/// How long a process gets to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `onboard-sandbox`.
pub struct SandboxProcess {
    /// The process (killed on drop).
    pub process: Process,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl SandboxProcess {
    /// Starts the sandbox on a free port with extra command-line arguments.
    pub fn start(args: &[&str]) -> Result<SandboxProcess, HarnessError> {
        let mut cmd = Command::new(binary("onboard-sandbox")?);
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("ONBOARD_LOG", "warn");
        let (process, line) = Process::start(cmd, onboard_shared::ready::SANDBOX)?;
        let url = address(&line)?.trim_end_matches('/').to_string();
        Ok(SandboxProcess { process, url })
    }
}

/// A running `onboard-worker`.
pub struct WorkerProcess {
    /// The process (killed on drop).
    pub process: Process,
    /// `http://127.0.0.1:<port>/metrics`.
    pub metrics_url: String,
}

impl WorkerProcess {
    /// Starts a worker with exactly `env` as its `ONBOARD_*` environment (nothing of the
    /// caller's leaks in); see [`worker_env`].
    pub fn start(env: &[(String, String)]) -> Result<WorkerProcess, HarnessError> {
        Self::start_with_clock(env, None)
    }

    /// [`WorkerProcess::start`] with the process's clock shifted by `offset` (libfaketime
    /// from Debian's `faketime`, e.g. `+30s` or `-30s`), to show that no decision rests on
    /// its clock. The library is preloaded into the worker itself rather than run through
    /// the `faketime` command, which would leave the worker behind when it is killed.
    pub fn start_with_clock(
        env: &[(String, String)],
        offset: Option<&str>,
    ) -> Result<WorkerProcess, HarnessError> {
        let mut cmd = Command::new(binary("onboard-worker")?);
        if let Some(offset) = offset {
            cmd.env("LD_PRELOAD", libfaketime()?)
                .env("FAKETIME", offset);
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("ONBOARD_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let (process, line) = Process::start(cmd, onboard_shared::ready::WORKER)?;
        let metrics_url = address(&line)?.to_string();
        Ok(WorkerProcess {
            process,
            metrics_url,
        })
    }
}

/// A running `onboard-producer serve`.
pub struct ApiServerProcess {
    /// The process (killed on drop).
    pub process: Process,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl ApiServerProcess {
    /// Starts `onboard-producer --config <config> serve` on a free port, with none of the
    /// caller's `ONBOARD_*` variables.
    pub fn start(config: &std::path::Path) -> Result<ApiServerProcess, HarnessError> {
        let mut cmd = Command::new(binary("onboard-producer")?);
        for (k, _) in std::env::vars() {
            if k.starts_with("ONBOARD_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("ONBOARD_LOG", "warn");
        let (process, line) = Process::start(cmd, onboard_shared::ready::SERVER)?;
        let url = address(&line)?.to_string();
        Ok(ApiServerProcess { process, url })
    }
}

/// Where Debian's `libfaketime` package puts the library (the `faketime` package needs it).
fn libfaketime() -> Result<&'static str, HarnessError> {
    const PLACES: [&str; 2] = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    ];
    PLACES
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| HarnessError("libfaketime is missing: apt-get install faketime".into()))
}

/// Environment for an `onboard-worker` on the sandbox profile against the Redis at
/// `redis_url` and, when given, the sandbox at `sandbox_url` with the sandbox credentials.
pub fn worker_env(redis_url: &str, sandbox_url: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(&str, String)> = vec![
        ("ONBOARD_PROFILE", "sandbox".into()),
        ("ONBOARD_REDIS_URL", redis_url.into()),
        ("ONBOARD_METRICS_LISTEN", "127.0.0.1:0".into()),
        ("ONBOARD_LOG", "info".into()),
    ];
    if let Some(base) = sandbox_url {
        env.extend(onboard_shared::config::Config::sandbox_provider_env(base));
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The address a ready line ends with.
fn address(line: &str) -> Result<&str, HarnessError> {
    line.split_whitespace()
        .last()
        .filter(|a| a.starts_with("http"))
        .ok_or_else(|| HarnessError(format!("no address in the ready line {line:?}")))
}
