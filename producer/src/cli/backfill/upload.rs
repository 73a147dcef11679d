//! A backfill for the HTTP API (`POST /v1/batches`): the same passes as the `backfill`
//! command over an input already spooled to a file, all or nothing (no rejects file, no
//! dry run, no wait), answering with typed outcomes instead of printing.

use super::passes::{self, Layout};
use super::{enqueue, input, Enqueued, Pass};
use crate::cli::Failure;
use onboard_producer::backfill::{FileFormat, RowError, RowKind};
use onboard_producer::{Producer, Work, WorkKeys, WorkOptions};
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::Lane;
use std::collections::HashSet;
use std::path::PathBuf;

/// What an upload enqueued.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// The batch its jobs were enqueued as (none when every row was enqueued before).
    pub batch: Option<String>,
    /// Valid rows.
    pub rows: u64,
    /// Jobs enqueued now.
    pub new_jobs: u64,
    /// Rows an earlier upload enqueued with the same payload.
    pub unchanged_rows: u64,
    /// Rows repeating another row (one job for both).
    pub duplicate_rows: u64,
    /// Rows whose devices joined another row's customer.
    pub merged_rows: u64,
    /// How long the enqueue took.
    pub seconds: f64,
    /// The jobs' ids, when asked for (`Upload::keep_ids`).
    #[serde(skip)]
    pub ids: Vec<String>,
}

/// Why an upload enqueued nothing.
pub enum UploadError {
    /// No row at all.
    Empty,
    /// Rows (or the header, or the file) that are invalid, every one of them.
    Invalid(Vec<RowError>),
    /// Rows whose job an earlier run enqueued with the same key and another payload.
    Changed(Vec<RowError>),
    /// Rows of kinds the caller may not enqueue.
    Forbidden(Vec<RowError>),
    /// The input could not be read back, or the queue failed.
    Failed(Failure),
}

impl From<Failure> for UploadError {
    fn from(f: Failure) -> Self {
        UploadError::Failed(f)
    }
}

/// What to upload: the spooled input, its format and fixed kind, the batch's label, and
/// the kinds the caller may enqueue.
pub struct Upload {
    /// The spooled input (read, never changed).
    pub path: PathBuf,
    /// Its format.
    pub format: FileFormat,
    /// The kind of every row, if fixed.
    pub kind: Option<RowKind>,
    /// The batch's label (the token's name).
    pub label: String,
    /// The job kinds allowed.
    pub allowed: Vec<JobKind>,
    /// Keep the enqueued jobs' ids (memory grows with the input).
    pub keep_ids: bool,
}

/// Validates the whole input, then enqueues it as one batch in the bulk lane.
pub async fn upload(producer: &Producer, up: Upload) -> Result<Uploaded, UploadError> {
    let layout = Layout {
        format: up.format,
        kind: up.kind,
    };
    let path = up.path.clone();
    let mut scan =
        tokio::task::spawn_blocking(move || input::scan(&path, layout.format, layout.kind))
            .await
            .map_err(|e| Failure::infra(format!("reading the input: {e}")))??;
    let decisions = passes::settle_repeats(&mut scan, layout)?;
    if scan.valid == 0 && scan.invalid.is_empty() {
        return Err(UploadError::Empty);
    }
    if !scan.invalid.is_empty() {
        return Err(UploadError::Invalid(scan.invalid));
    }
    if !JobKind::ALL.iter().all(|k| up.allowed.contains(k)) {
        let none = HashSet::new();
        let forbidden: Vec<RowError> = passes::units(&scan.spool, layout, &decisions, &none)?
            .filter_map(|u| {
                let kinds = match &u.work {
                    Work::Job(job) => vec![job.kind()],
                    Work::OnboardCustomer { .. } => {
                        vec![JobKind::CreateCustomer, JobKind::BindDevices]
                    }
                };
                let bad = kinds.into_iter().find(|k| !up.allowed.contains(k))?;
                let rule = format!("this token may not enqueue {bad} jobs");
                Some(RowError::new(u.line, "kind", rule))
            })
            .collect();
        if !forbidden.is_empty() {
            return Err(UploadError::Forbidden(forbidden));
        }
    }
    let checked = passes::check(producer, &scan.spool, layout, &decisions).await?;
    if !checked.changed.is_empty() {
        return Err(UploadError::Changed(checked.changed));
    }
    let duplicate_rows = decisions.duplicates().count() as u64;
    let merged_rows = decisions.merged() as u64;
    let done = if checked.new == 0 {
        Enqueued::nothing()
    } else {
        let batch = producer
            .store()
            .create_batch(&up.label)
            .await
            .map_err(Failure::from)?;
        let options = WorkOptions {
            keys: WorkKeys::NaturalKey,
            lane: Some(Lane::Bulk),
            source: Some(batch.clone()),
        };
        let pass = Pass {
            total: checked.units,
            keep_ids: up.keep_ids,
            quiet: true,
            options: &options,
        };
        let mut done = enqueue(
            producer,
            scan.spool,
            layout,
            decisions,
            HashSet::new(),
            pass,
        )
        .await?;
        done.batch = Some(batch);
        done
    };
    Ok(Uploaded {
        batch: done.batch,
        rows: scan.valid,
        new_jobs: done.new_jobs,
        unchanged_rows: checked.unchanged,
        duplicate_rows,
        merged_rows,
        seconds: done.seconds,
        ids: done.ids,
    })
}
