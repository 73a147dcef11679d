//! `onboard-worker`: runs provisioning jobs from the Redis queues against the providers.
//!
//! Start-up, the one place errors become an exit code, and shutdown all live here:
//! SIGTERM or Ctrl-C stops fetching, lets running jobs finish for `queue.shutdown_grace_ms`,
//! then hands whatever still runs straight back to the queue.

use anyhow::Context;
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use onboard_shared::config::Config;
use onboard_shared::queue::{JobStore, QueueError};
use onboard_shared::ratelimit::RedisGate;
use onboard_worker::{catalogue, credentials, handlers, http, launcher, sweeper, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

// mimalloc, not glibc's malloc: a draining worker allocates and frees several small buffers
// per job (replies, task extensions, results), and glibc's malloc, free and consolidation
// were about a quarter of the worker's CPU (perf, 200,000 stubbed jobs). The library target
// leaves the choice to its embedder (the bench, the tests).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the kernel from backing this process's memory with transparent huge pages.
///
/// mimalloc commits its arena eagerly and advises huge pages for it, so each 2 MiB region
/// the worker touches became resident whole: with 1,000 jobs in flight, peak RSS rose from
/// 48 MiB (glibc) to 75 MiB, past the 64 MiB target. mimalloc's own option for this
/// (`MIMALLOC_ALLOW_THP=0`) is read before `main`, so the process opts out here instead;
/// the kernel checks the flag at each page fault, so it also covers the arena mimalloc
/// reserved before `main`. A failure only costs memory, so it is not fatal.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE reads no memory of ours; it sets a process flag.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Runs onboard jobs from Redis against the provider APIs.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; `ONBOARD_*` environment variables override it.
    #[arg(long, env = "ONBOARD_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("onboard-worker: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onboard-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = Config::load(cli.config.as_deref())?;
    telemetry::init();
    credentials::check(&cfg).map_err(|e| anyhow::anyhow!("cannot start: {e}"))?;
    let metrics = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ])
        .context("metrics buckets")?
        .install_recorder()
        .context("install the metrics recorder")?;
    catalogue::register();
    let store = connect(&cfg).await?;
    let gate = Arc::new(RedisGate::new(
        store.connection(),
        cfg.limits.clone(),
        Duration::from_millis(cfg.queue.max_inline_wait_ms),
    ));
    let runner = handlers::Runner::new(&cfg, gate)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (hard_stop_tx, hard_stop_rx) = watch::channel(false);
    let running = Arc::new(AtomicBool::new(true));
    let sweeper_health = Arc::new(sweeper::SweeperHealth::default());

    let listener = tokio::net::TcpListener::bind(&cfg.metrics_listen)
        .await
        .with_context(|| format!("listen on {} (metrics_listen)", cfg.metrics_listen))?;
    let addr = listener.local_addr()?;
    let app = http::router(http::HttpState {
        metrics,
        store: store.clone(),
        running: running.clone(),
        sweeper: sweeper_health.clone(),
    });
    let mut http_stop = stop_rx.clone();
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    tokio::spawn(sweeper::run(store.clone(), sweeper_health, stop_rx));

    let monitor = launcher::monitor(&cfg, store, runner, shutdown_rx, hard_stop_rx);
    // Tests and scripts wait for this line.
    println!("{} http://{addr}/metrics", onboard_shared::ready::WORKER);
    tracing::info!(%addr, "worker started");

    let grace = Duration::from_millis(cfg.queue.shutdown_grace_ms);
    let shutdown = async move {
        wait_for_signal().await;
        tracing::info!(
            ?grace,
            "shutting down: no new jobs; running ones get the grace period"
        );
        running.store(false, Ordering::Release);
        let _ = shutdown_tx.send(true);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = hard_stop_tx.send(true);
        });
        Ok(())
    };
    let result = monitor.run_with_signal(shutdown).await;
    let _ = stop_tx.send(true);
    result.context("workers")?;
    tracing::info!("stopped");
    Ok(())
}

/// Connects to Redis, waiting with backoff while it is not up yet; a bad encryption key
/// fails at once.
async fn connect(cfg: &Config) -> anyhow::Result<JobStore> {
    tracing::info!(redis = %cfg.redis_url_for_display(), "connecting to Redis");
    let mut delay = Duration::from_millis(100);
    loop {
        match JobStore::connect(cfg).await {
            Ok(store) => return Ok(store),
            Err(QueueError::Redis(e)) => {
                tracing::warn!(
                    redis = %cfg.redis_url_for_display(),
                    error = %e,
                    ?delay,
                    "Redis not reachable yet; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
