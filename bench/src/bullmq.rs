//! BullMQ, the second peer of the drain: `bench/bullmq/drain.mjs`, run with Node.js against
//! the scenario's own redis-server. Issue 19's target is twice BullMQ's drain in the same
//! sitting, and this machine's pace moves by a factor of three between sittings, so the
//! figure is measured in the run rather than carried from another day.
//!
//! Needs `node` and `npm` on the PATH and the npm registry the first time (`npm ci` from the
//! committed lock file, into `bench/bullmq/node_modules`). Without them the caller gets an
//! error saying which is missing and falls back to an estimate.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// One BullMQ drain, as `drain.mjs` reports it.
#[derive(Debug, Deserialize)]
pub struct BullmqDrain {
    /// Jobs completed per second, from the first job processed to the last completed.
    pub jobs_per_sec: f64,
    /// The BullMQ version that ran (the lock file pins it).
    pub bullmq: String,
}

/// `bench/bullmq`, beside this crate's sources.
fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bullmq")
}

/// Runs `program args` in `dir` to its end within `timeout`; its stdout, or an error with
/// the tail of its stderr.
async fn run(
    dir: &PathBuf,
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<String> {
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("{program} not found on the PATH"))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("`{program} {}` ran past {timeout:?}", args.join(" ")))??;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Drains `jobs` no-op jobs through BullMQ on the redis-server at `redis_url` (which the
/// caller has flushed), installing BullMQ first if it is not yet.
pub async fn drain(redis_url: &str, jobs: usize, timeout: Duration) -> anyhow::Result<BullmqDrain> {
    let dir = project_dir();
    if !dir.join("node_modules").join("bullmq").is_dir() {
        run(
            &dir,
            "npm",
            &["ci", "--no-audit", "--no-fund"],
            Duration::from_secs(300),
        )
        .await
        .context("install BullMQ (npm ci in bench/bullmq)")?;
    }
    let jobs = jobs.to_string();
    let out = run(&dir, "node", &["drain.mjs", redis_url, &jobs], timeout).await?;
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .with_context(|| format!("drain.mjs printed {last:?}, not its JSON line"))
}
