//! `backfill FILE`: bulk enqueue from CSV or JSON Lines.
//!
//! Pass 1 streams the whole file and validates every row; any invalid row stops the run
//! with a report naming line, field and rule, and nothing is enqueued (`--skip-invalid`
//! enqueues the valid rows and writes the rejects to a file). Pass 2 streams the file again:
//! a reader thread parses it into chunks while earlier chunks are enqueued, several
//! pipelines at a time. Each row's idempotency key is its kind and natural
//! key, so a rerun of the same file enqueues nothing new and says so. Memory stays flat in
//! the file size (unless `--wait`, which keeps the job ids to follow them).

use super::{Ctx, Failure};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use onboard_producer::backfill::{read_rows, BackfillRow, FileFormat, RowKind};
use onboard_producer::{JobsFollower, Producer, Work, WorkKeys};
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::Enqueued;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `backfill` arguments.
#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// The CSV (.csv) or JSON Lines (.jsonl, .ndjson) file.
    file: PathBuf,
    /// csv or jsonl (default: from the file's extension).
    #[arg(long)]
    format: Option<String>,
    /// The job kind of every row (create-customer, bind-devices, create-account,
    /// register-user, onboard-customer); else each row's `kind` column.
    #[arg(long)]
    kind: Option<String>,
    /// Enqueue the valid rows and write the invalid ones to --rejects.
    #[arg(long)]
    skip_invalid: bool,
    /// Where --skip-invalid writes rejected rows' errors (default: FILE.rejects.txt).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Validate and count, enqueue nothing.
    #[arg(long)]
    dry_run: bool,
    /// Follow the jobs to the end with a live count per state.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

/// Rows per chunk: about one enqueue pipeline's worth (see `JobStore::enqueue_many`).
const CHUNK: usize = 2_000;
/// Chunks being enqueued at once while the reader thread parses the next ones.
const IN_FLIGHT: usize = 4;
const MAX_REPORTED: usize = 50;

fn format_of(args: &BackfillArgs) -> Result<FileFormat, Failure> {
    let name = match &args.format {
        Some(f) => f.to_ascii_lowercase(),
        None => args
            .file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase(),
    };
    match name.as_str() {
        "csv" => Ok(FileFormat::Csv),
        "jsonl" | "ndjson" | "json-lines" => Ok(FileFormat::JsonLines),
        other => Err(Failure::invalid(format!(
            "cannot tell the format of {} ({other:?}): use --format csv or --format jsonl",
            args.file.display()
        ))),
    }
}

fn kind_of(args: &BackfillArgs) -> Result<Option<RowKind>, Failure> {
    match args.kind.as_deref() {
        None => Ok(None),
        Some("onboard-customer") => Ok(Some(RowKind::OnboardCustomer)),
        Some(k) => k
            .parse::<JobKind>()
            .map(|k| Some(RowKind::Job(k)))
            .map_err(|e| Failure::invalid(format!("--kind: {e} or onboard-customer"))),
    }
}

fn open(path: &Path) -> Result<std::fs::File, Failure> {
    std::fs::File::open(path)
        .map_err(|e| Failure::invalid(format!("cannot open {}: {e}", path.display())))
}

struct Progress {
    bar: ProgressBar,
    plain: bool,
    last_plain: Instant,
    /// A hidden bar has no length, so plain lines take the total from here.
    total: u64,
}

impl Progress {
    fn new(total: u64, what: &str) -> Progress {
        let plain = !std::io::stderr().is_terminal();
        let bar = if plain {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} rows  {per_sec}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar
        };
        Progress {
            bar,
            plain,
            last_plain: Instant::now(),
            total,
        }
    }

    fn inc(&mut self, n: u64) {
        self.bar.inc(n);
        if self.plain && self.last_plain.elapsed() >= Duration::from_secs(2) {
            self.last_plain = Instant::now();
            eprintln!("{}", self.plain_line());
        }
    }

    /// The line printed every few seconds when stderr is not a terminal.
    fn plain_line(&self) -> String {
        format!("enqueued {} of {} rows", self.bar.position(), self.total)
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Runs `backfill`.
pub async fn run(ctx: &Ctx, args: BackfillArgs) -> Result<(), Failure> {
    let format = format_of(&args)?;
    let kind = kind_of(&args)?;

    // Pass 1: validate everything before anything is written.
    let mut valid = 0u64;
    let mut errors: Vec<String> = Vec::new();
    let mut bad_lines = std::collections::BTreeSet::new();
    for row in read_rows(open(&args.file)?, format, kind) {
        match row {
            Ok(_) => valid += 1,
            Err(e) => {
                bad_lines.insert(e.line);
                errors.push(e.to_string());
            }
        }
    }
    if valid == 0 && errors.is_empty() {
        return Err(Failure::invalid(format!(
            "{}: no rows",
            args.file.display()
        )));
    }
    if !errors.is_empty() {
        if !args.skip_invalid {
            let mut msg = format!(
                "{} invalid row(s) in {}; nothing was enqueued:",
                bad_lines.len(),
                args.file.display()
            );
            for e in errors.iter().take(MAX_REPORTED) {
                msg.push_str(&format!("\n  {e}"));
            }
            if errors.len() > MAX_REPORTED {
                msg.push_str(&format!("\n  ... and {} more", errors.len() - MAX_REPORTED));
            }
            msg.push_str("\n(--skip-invalid enqueues the valid rows and writes these to a file)");
            return Err(Failure::invalid(msg));
        }
        let path = args
            .rejects
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.rejects.txt", args.file.display())));
        let mut f = std::fs::File::create(&path)
            .map_err(|e| Failure::invalid(format!("cannot write {}: {e}", path.display())))?;
        for e in &errors {
            writeln!(f, "{e}").map_err(|e| Failure::invalid(format!("writing rejects: {e}")))?;
        }
        eprintln!(
            "skipping {} invalid row(s); their errors are in {}",
            bad_lines.len(),
            path.display()
        );
    }
    if args.dry_run {
        ctx.print(&serde_json::json!({"valid_rows": valid, "invalid_rows": bad_lines.len(), "enqueued": 0}), || {
            format!("dry run: {valid} valid row(s), {} invalid; nothing enqueued", bad_lines.len())
        });
        return Ok(());
    }

    // Pass 2: enqueue.
    let producer = ctx.producer().await?;
    let started = Instant::now();
    let mut progress = Progress::new(valid, "enqueueing");
    let mut new_jobs = 0u64;
    let mut duplicates = 0u64;
    let mut ids: Vec<String> = Vec::new();
    let chunks = futures::stream::unfold(
        spawn_reader(args.file.clone(), format, kind),
        |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
    );
    let mut done_chunks = std::pin::pin!(chunks
        .map(|chunk| async { enqueue_chunk(&producer, chunk?).await })
        .buffered(IN_FLIGHT));
    while let Some(done) = done_chunks.next().await {
        let done = done?;
        for e in &done.jobs {
            if e.duplicate {
                duplicates += 1;
            } else {
                new_jobs += 1;
            }
            if args.wait {
                ids.push(e.id.clone());
            }
        }
        progress.inc(done.rows);
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "rows": valid,
        "new_jobs": new_jobs,
        "already_enqueued": duplicates,
        "invalid_rows_skipped": bad_lines.len(),
        "seconds": secs,
    });
    ctx.print(&summary, || {
        let mut s = format!(
            "{valid} row(s): {new_jobs} new job(s) enqueued, {duplicates} already enqueued by an earlier run, in {secs:.2} s ({:.0} jobs/s)",
            (new_jobs + duplicates) as f64 / secs.max(1e-9)
        );
        if new_jobs == 0 && duplicates > 0 {
            s.push_str("\nnothing new: every row was enqueued by an earlier run");
        }
        s
    });
    if args.wait {
        follow(ctx, &producer, &ids, Duration::from_secs(args.timeout)).await?;
    }
    Ok(())
}

/// What one chunk's enqueue did.
struct ChunkDone {
    /// Rows of the file it held.
    rows: u64,
    /// One entry per job (an `onboard-customer` row makes two).
    jobs: Vec<Enqueued>,
}

/// Pass 2's reader: parses the file on its own thread and hands over chunks of valid rows,
/// so parsing the next chunks overlaps Redis running the ones before. The channel is
/// bounded, which keeps memory flat: the reader waits while enough chunks are queued.
fn spawn_reader(
    path: PathBuf,
    format: FileFormat,
    kind: Option<RowKind>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<BackfillRow>, Failure>> {
    let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    std::thread::spawn(move || {
        let file = match open(&path) {
            Ok(file) => file,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut rows = read_rows(file, format, kind).filter_map(Result::ok);
        loop {
            let chunk: Vec<BackfillRow> = rows.by_ref().take(CHUNK).collect();
            // A send fails only when the enqueue side stopped (an error): stop reading.
            if chunk.is_empty() || tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
        }
    });
    rx
}

async fn enqueue_chunk(producer: &Producer, chunk: Vec<BackfillRow>) -> Result<ChunkDone, Failure> {
    let rows = chunk.len() as u64;
    let work: Vec<Work> = chunk.into_iter().map(|row| row.item).collect();
    let jobs = producer
        .enqueue_work(work, WorkKeys::NaturalKey)
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(ChunkDone { rows, jobs })
}

/// Follows the backfill's jobs through the events stream, printing a live count per state,
/// until every one succeeded, died, expired or awaits a code.
async fn follow(
    ctx: &Ctx,
    producer: &Producer,
    ids: &[String],
    timeout: Duration,
) -> Result<(), Failure> {
    let mut jobs = producer.follow(ids).await?;
    let plain = !std::io::stderr().is_terminal();
    let mut last_print: Option<Instant> = None;
    let line = |jobs: &JobsFollower| {
        jobs.counts()
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let open = jobs
        .settle(timeout, |jobs| {
            // At most a line a second, and always the last one.
            let due = last_print.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if due || jobs.unsettled() == 0 {
                if plain || jobs.unsettled() == 0 {
                    eprintln!("{}", line(jobs));
                } else {
                    eprint!("\r{}    ", line(jobs));
                }
                last_print = Some(Instant::now());
            }
        })
        .await?;
    if open > 0 {
        eprintln!("{}", line(&jobs));
        return Err(Failure::infra(format!(
            "{open} job(s) still open after {} s",
            timeout.as_secs()
        )));
    }
    let counts: BTreeMap<&str, usize> = jobs
        .counts()
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    ctx.print(&counts, || "all jobs settled".to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_progress_counts_against_the_file_total() {
        let mut progress = Progress::new(10, "enqueueing");
        progress.inc(4);
        assert_eq!(progress.plain_line(), "enqueued 4 of 10 rows");
    }
}
