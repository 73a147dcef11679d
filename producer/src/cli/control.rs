//! Steering commands: `batch list|status|pause|resume|cancel` for backfill runs, and
//! `queue pause|resume KIND` for a job kind (e.g. during a provider outage).

use super::{Ctx, Failure};
use clap::Subcommand;
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{BatchState, BatchStatus};
use std::time::{Duration, Instant};

/// `batch` subcommands.
#[derive(Subcommand, Debug)]
pub enum BatchCommand {
    /// The newest batches with their counts.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One batch: counts per state, its current rate and an ETA.
    Status {
        /// The batch id (printed by `backfill`).
        batch_id: String,
    },
    /// Stop claiming its jobs; they stay queued.
    Pause {
        /// The batch id.
        batch_id: String,
    },
    /// Claim its jobs again.
    Resume {
        /// The batch id.
        batch_id: String,
    },
    /// End its jobs that have not started (`cancelled`) and release their idempotency keys,
    /// so a corrected file can be run again; running jobs finish.
    Cancel {
        /// The batch id.
        batch_id: String,
    },
}

/// `queue` subcommands.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Stop claiming this kind in every worker; its jobs stay queued.
    Pause {
        /// create-customer, bind-devices, create-account or register-user.
        kind: JobKind,
    },
    /// Claim this kind again.
    Resume {
        /// The kind.
        kind: JobKind,
    },
}

/// A batch's status as shown, with its rate measured over a second and an ETA.
#[derive(serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    status: BatchStatus,
    jobs_per_sec: f64,
    eta_secs: Option<f64>,
}

fn describe(s: &BatchStatus) -> String {
    format!(
        "{}  {}  {}  enqueued {}  queued {}  in flight {}  succeeded {}  dead {}  expired {}  cancelled {}",
        s.id,
        s.state.as_str(),
        s.label,
        s.enqueued,
        s.queued,
        s.in_flight,
        s.succeeded,
        s.dead,
        s.expired,
        s.cancelled
    )
}

/// `batch`.
pub async fn batch(ctx: &Ctx, cmd: BatchCommand) -> Result<(), Failure> {
    let store = ctx.producer().await?.store().clone();
    match cmd {
        BatchCommand::List { limit } => {
            let all = store.batches(limit).await?;
            ctx.print(&all, || {
                if all.is_empty() {
                    "no batches".into()
                } else {
                    all.iter().map(describe).collect::<Vec<_>>().join("\n")
                }
            });
        }
        BatchCommand::Status { batch_id } => {
            // The rate is what ended in one second; the ETA comes from it, or from the
            // batch's share of its provider's limit while nothing ended yet.
            let first = store.batch_status(&batch_id).await?;
            let started = Instant::now();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let status = store.batch_status(&batch_id).await?;
            let ended = |s: &BatchStatus| s.succeeded + s.dead + s.expired + s.cancelled;
            let rate = (ended(&status) - ended(&first).min(ended(&status))) as f64
                / started.elapsed().as_secs_f64();
            let share = status.provider_rate / status.bulk_sources.max(1) as f64;
            let left = (status.queued + status.in_flight) as f64;
            let eta_secs = match (rate > 0.0, share > 0.0) {
                (true, _) => Some(left / rate),
                (false, true) => Some(left / share),
                _ => None,
            };
            let shown = Shown {
                status,
                jobs_per_sec: rate,
                eta_secs,
            };
            ctx.print(&shown, || {
                let mut line = format!("{}\nrate {:.1} jobs/s", describe(&shown.status), rate);
                if let Some(eta) = eta_secs {
                    line.push_str(&format!("  ETA {eta:.0} s"));
                }
                line
            });
        }
        BatchCommand::Pause { batch_id } => {
            store.set_batch_state(&batch_id, BatchState::Paused).await?;
            ctx.print(
                &serde_json::json!({"batch": batch_id, "state": "paused"}),
                || format!("{batch_id}: paused; its jobs stay queued"),
            );
        }
        BatchCommand::Resume { batch_id } => {
            store.set_batch_state(&batch_id, BatchState::Active).await?;
            ctx.print(
                &serde_json::json!({"batch": batch_id, "state": "active"}),
                || format!("{batch_id}: resumed"),
            );
        }
        BatchCommand::Cancel { batch_id } => {
            let cancelled = store.cancel_batch(&batch_id).await?;
            ctx.print(
                &serde_json::json!({"batch": batch_id, "state": "cancelled", "cancelled_jobs": cancelled}),
                || format!("{batch_id}: cancelled {cancelled} job(s) that had not started; their keys are free again"),
            );
        }
    }
    Ok(())
}

/// `queue`.
pub async fn queue(ctx: &Ctx, cmd: QueueCommand) -> Result<(), Failure> {
    let store = ctx.producer().await?.store().clone();
    let (kind, paused) = match cmd {
        QueueCommand::Pause { kind } => (kind, true),
        QueueCommand::Resume { kind } => (kind, false),
    };
    let changed = store.pause_kind(kind, paused).await?;
    let state = if paused { "paused" } else { "running" };
    ctx.print(
        &serde_json::json!({"kind": kind, "state": state, "changed": changed}),
        || match (paused, changed) {
            (true, true) => format!("{kind}: paused in every worker; its jobs stay queued"),
            (true, false) => format!("{kind}: was paused already"),
            (false, true) => format!("{kind}: resumed"),
            (false, false) => format!("{kind}: was not paused"),
        },
    );
    Ok(())
}
