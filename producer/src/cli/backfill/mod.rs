//! `backfill INPUT`: bulk enqueue from CSV or JSON Lines.
//!
//! 1. The input is read once (`input`: a file, `-` for standard input, a pipe, a FIFO),
//!    spooled to a private temporary file and every row validated on the way.
//! 2. Rows that share a natural key are settled (`passes::settle_repeats`): identical rows
//!    are one job, one customer's onboard-customer rows merge their devices, anything else
//!    is a conflict, i.e. invalid.
//! 3. Any invalid row stops the run with a report naming line, field and rule, and nothing
//!    is enqueued; `--skip-invalid` writes them to a rejects file (`rejects`) and goes on.
//! 4. The queue is asked what each unit would do (`passes::check`): a row whose key holds a
//!    job with another payload changed since an earlier run, and stops the run the same way.
//! 5. The units are enqueued: a reader thread parses the spool into chunks while earlier
//!    chunks are enqueued, several pipelines at a time.
//!
//! Each row's idempotency key is its kind and natural key, so a rerun of the same file
//! enqueues nothing new and says so. Memory stays flat in the input's size (unless `--wait`,
//! which keeps the job ids to follow them); pass 1 keeps one small hash per distinct key.

mod input;
mod passes;
mod progress;
mod rejects;
pub(crate) mod upload;

use super::{Ctx, Failure};
use clap::Args;
use futures::StreamExt;
use onboard_producer::backfill::{FileFormat, RowError, RowKind};
use onboard_producer::{JobsFollower, Producer, WorkKeys, WorkOptions};
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::Lane;
use passes::{Decisions, Layout};
use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `backfill` arguments.
#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// The CSV (.csv) or JSON Lines (.jsonl, .ndjson) input; `-` reads standard input. Any
    /// readable stream works (a pipe, a FIFO, `<(...)`): it is read once.
    file: PathBuf,
    /// csv or jsonl (default: from the file's extension; required for `-` and streams
    /// without one).
    #[arg(long)]
    format: Option<String>,
    /// The job kind of every row (create-customer, bind-devices, create-account,
    /// register-user, onboard-customer); else each row's `kind` column.
    #[arg(long)]
    kind: Option<String>,
    /// Enqueue the valid rows; write the invalid ones, and those changed since an earlier
    /// run, to --rejects. Exits 1 when no row is valid; an unreadable input still fails.
    #[arg(long)]
    skip_invalid: bool,
    /// Where --skip-invalid writes the rejected rows, unchanged, in the input's format (a
    /// file to fix and run again); their errors go to the same path plus `.errors`
    /// (default: INPUT.rejects.csv / .jsonl beside the input, or in the current directory
    /// for standard input).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Validate and count, enqueue nothing.
    #[arg(long)]
    dry_run: bool,
    /// Follow the jobs to the end with a live count per state (exit 3 on --timeout).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

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

/// `--rejects`, or `INPUT.rejects.<ext>` beside the input (`stdin.rejects.<ext>` here).
fn rejects_path(args: &BackfillArgs, format: FileFormat) -> PathBuf {
    if let Some(p) = &args.rejects {
        return p.clone();
    }
    let ext = match format {
        FileFormat::Csv => "csv",
        FileFormat::JsonLines => "jsonl",
    };
    let stem = args
        .file
        .file_stem()
        .filter(|_| args.file.as_os_str() != "-")
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stdin".into());
    let dir = match args.file.parent() {
        Some(d) if args.file.as_os_str() != "-" && !args.file.starts_with("/dev") => d,
        _ => Path::new(""),
    };
    dir.join(format!("{stem}.rejects.{ext}"))
}

/// The report of rows that stop the run: at most [`MAX_REPORTED`], then a count.
fn report(title: String, errors: &[RowError], hint: &str) -> Failure {
    let mut msg = title;
    for e in errors.iter().take(MAX_REPORTED) {
        msg.push_str(&format!("\n  {e}"));
    }
    if errors.len() > MAX_REPORTED {
        msg.push_str(&format!("\n  ... and {} more", errors.len() - MAX_REPORTED));
    }
    msg.push_str(hint);
    Failure::invalid(msg)
}

const SKIP_HINT: &str =
    "\n(--skip-invalid enqueues the other rows and writes these to a rejects file)";

/// Runs `backfill`.
pub async fn run(ctx: &Ctx, args: BackfillArgs) -> Result<(), Failure> {
    let format = format_of(&args)?;
    let layout = Layout {
        format,
        kind: kind_of(&args)?,
    };
    let path = args.file.clone();
    // Pass 1 reads a stream that may block (a FIFO, a terminal): off the async threads.
    let mut scan = tokio::task::spawn_blocking(move || input::scan(&path, format, layout.kind))
        .await
        .map_err(|e| Failure::infra(format!("reading the input: {e}")))??;
    let decisions = passes::settle_repeats(&mut scan, layout)?;
    let name = args.file.display().to_string();
    if scan.valid == 0 && scan.invalid.is_empty() {
        return Err(Failure::invalid(format!("{name}: no rows")));
    }
    let file_error = scan.invalid.iter().any(|e| e.span.is_none());
    if !scan.invalid.is_empty() && (!args.skip_invalid || file_error) {
        let title = format!(
            "{} invalid row(s) in {name}; nothing was enqueued:",
            scan.invalid.len()
        );
        return Err(report(
            title,
            &scan.invalid,
            if file_error { "" } else { SKIP_HINT },
        ));
    }
    let duplicates: Vec<(u64, u64)> = decisions.duplicates().collect();
    let units_merged = decisions.merged();
    let conflicted: HashSet<u64> = scan.invalid.iter().map(|e| e.line).collect();
    let units = scan.valid
        - duplicates.len() as u64
        - units_merged as u64
        - decisions
            .by_line
            .keys()
            .filter(|l| conflicted.contains(l))
            .count() as u64;
    if args.dry_run {
        let (invalid, dups) = (scan.invalid.len(), duplicates.len());
        ctx.print(
            &serde_json::json!({"valid_rows": scan.valid, "invalid_rows": invalid,
                "duplicate_rows": dups, "jobs_to_enqueue": units, "enqueued": 0}),
            || format!("dry run: {} valid row(s) ({dups} duplicate), {invalid} invalid; nothing enqueued", scan.valid),
        );
        return Ok(());
    }

    let producer = ctx.producer().await?;
    let checked = passes::check(&producer, &scan.spool, layout, &decisions).await?;
    if !checked.changed.is_empty() && !args.skip_invalid {
        let title = format!(
            "{} row(s) of {name} changed since an earlier run enqueued them ({} unchanged, {} new); nothing was enqueued:",
            checked.changed.len(),
            checked.unchanged,
            checked.new
        );
        return Err(report(title, &checked.changed, SKIP_HINT));
    }
    let mut skip: HashSet<u64> = HashSet::new();
    let mut rejected: Vec<&RowError> = scan.invalid.iter().chain(&checked.changed).collect();
    rejected.sort_by_key(|e| e.line);
    if !rejected.is_empty() {
        let path = rejects_path(&args, format);
        let header = match &scan.header {
            Some(span) => Some(scan.spool.bytes(span)?),
            None => None,
        };
        let mut out = rejects::Rejects::create(&path, header.as_deref())?;
        for e in &rejected {
            out.add(&scan.spool, e)?;
            skip.insert(e.line);
        }
        eprintln!(
            "skipping {} row(s): they are in {} (fix them and run it again), their errors in {}",
            out.count,
            out.rows_path.display(),
            out.errors_path.display()
        );
        out.finish()?;
    }
    let to_enqueue = checked.units.saturating_sub(checked.changed_units);
    if to_enqueue == 0 && !rejected.is_empty() {
        return Err(Failure::invalid(format!(
            "no valid row in {name}; nothing was enqueued"
        )));
    }
    let enqueued = if checked.new == 0 && !args.wait {
        // Every unit is already enqueued with the same payload: a pass would write nothing.
        Enqueued::nothing()
    } else {
        // One backfill run is one batch: a source of its own in the bulk lane, which can be
        // paused, resumed and cancelled (`onboard-producer batch`).
        let batch = producer.store().create_batch(&name).await?;
        let options = WorkOptions {
            keys: WorkKeys::NaturalKey,
            lane: Some(Lane::Bulk),
            source: Some(batch.clone()),
        };
        let pass = Pass {
            total: to_enqueue,
            keep_ids: args.wait,
            quiet: false,
            options: &options,
        };
        let mut done = enqueue(&producer, scan.spool, layout, decisions, skip, pass).await?;
        done.batch = Some(batch);
        done
    };
    let counts = Counts {
        rows: scan.valid,
        unchanged: checked.unchanged,
        duplicates: &duplicates,
        merged: units_merged,
        rejected: rejected.len(),
    };
    print_summary(ctx, &counts, &enqueued);
    if args.wait {
        follow(
            ctx,
            &producer,
            &enqueued.ids,
            enqueued.batch.as_deref(),
            Duration::from_secs(args.timeout),
        )
        .await?;
    }
    Ok(())
}

/// What the enqueue pass did.
struct Enqueued {
    new_jobs: u64,
    /// Jobs whose key was taken by an identical job meanwhile (or earlier).
    existing: u64,
    seconds: f64,
    ids: Vec<String>,
    /// The batch the run enqueued as, if it enqueued anything.
    batch: Option<String>,
}

impl Enqueued {
    /// Nothing enqueued (yet).
    fn nothing() -> Self {
        Enqueued {
            new_jobs: 0,
            existing: 0,
            seconds: 0.0,
            ids: Vec::new(),
            batch: None,
        }
    }
}

/// How the enqueue pass runs: how many units, whether to keep the ids (to follow them), and
/// the batch's options.
struct Pass<'a> {
    total: u64,
    keep_ids: bool,
    /// No progress lines (a server answering an upload).
    quiet: bool,
    options: &'a WorkOptions,
}

async fn enqueue(
    producer: &Producer,
    spool: input::Spool,
    layout: Layout,
    decisions: Decisions,
    skip: HashSet<u64>,
    pass: Pass<'_>,
) -> Result<Enqueued, Failure> {
    let Pass {
        total,
        keep_ids,
        quiet,
        options,
    } = pass;
    let started = Instant::now();
    let mut progress = (!quiet).then(|| progress::Progress::new(total, "enqueueing"));
    let mut out = Enqueued::nothing();
    let rx = passes::spawn_reader(
        Arc::new(spool),
        layout,
        Arc::new(decisions),
        skip,
        IN_FLIGHT,
    );
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut done_chunks = std::pin::pin!(chunks
        .map(|chunk| async { passes::enqueue_chunk(producer, chunk?, options).await })
        .buffered(IN_FLIGHT));
    while let Some(done) = done_chunks.next().await {
        let done = done?;
        for e in &done.jobs {
            if e.duplicate {
                out.existing += 1;
            } else {
                out.new_jobs += 1;
            }
            if keep_ids {
                out.ids.push(e.id.clone());
            }
        }
        if let Some(p) = progress.as_mut() {
            p.inc(done.units);
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// The counts the summary reports besides the enqueue's own.
struct Counts<'a> {
    /// Valid rows of the input.
    rows: u64,
    unchanged: u64,
    duplicates: &'a [(u64, u64)],
    merged: usize,
    rejected: usize,
}

fn print_summary(ctx: &Ctx, c: &Counts<'_>, e: &Enqueued) {
    let dup_lines: Vec<serde_json::Value> = c
        .duplicates
        .iter()
        .take(MAX_REPORTED)
        .map(|(line, of)| serde_json::json!({"line": line, "duplicate_of": of}))
        .collect();
    let summary = serde_json::json!({
        "rows": c.rows,
        "merged_rows": c.merged,
        "new_jobs": e.new_jobs,
        "unchanged_rows": c.unchanged,
        "duplicate_rows": c.duplicates.len(),
        "duplicates": dup_lines,
        "rejected_rows": c.rejected,
        "seconds": e.seconds,
        "batch": e.batch,
    });
    ctx.print(&summary, || {
        let mut s = format!(
            "{} row(s): {} new job(s) enqueued, {} row(s) unchanged since an earlier run, {} duplicate row(s), {} merged into their customer, {} rejected, in {:.2} s ({:.0} jobs/s)",
            c.rows,
            e.new_jobs,
            c.unchanged,
            c.duplicates.len(),
            c.merged,
            c.rejected,
            e.seconds,
            (e.new_jobs + e.existing) as f64 / e.seconds.max(1e-9)
        );
        for (line, of) in c.duplicates.iter().take(10) {
            s.push_str(&format!("\n  line {line} repeats line {of}: one job for both"));
        }
        if c.duplicates.len() > 10 {
            s.push_str(&format!("\n  ... and {} more", c.duplicates.len() - 10));
        }
        if let Some(batch) = &e.batch {
            s.push_str(&format!(
                "\nbatch {batch} (onboard-producer batch status|pause|resume|cancel {batch})"
            ));
        }
        if e.new_jobs == 0 && c.unchanged > 0 {
            s.push_str("\nnothing new: every row to enqueue was enqueued by an earlier run");
        }
        s
    });
}

/// Follows the backfill's jobs through the events stream, printing a live count per state,
/// until every one succeeded, died, expired or awaits a code.
async fn follow(
    ctx: &Ctx,
    producer: &Producer,
    ids: &[String],
    batch: Option<&str>,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut jobs = producer.follow(ids).await?;
    // The batch's fair share of its provider's rate, for the ETA: the limit shared by the
    // bulk sources it competes with (live work may take some of it).
    let share = match batch {
        Some(id) => {
            let s = producer.store().batch_status(id).await?;
            (s.provider_rate > 0.0).then(|| s.provider_rate / s.bulk_sources.max(1) as f64)
        }
        None => None,
    };
    let plain = !std::io::stderr().is_terminal();
    let mut last_print: Option<Instant> = None;
    let line = |jobs: &JobsFollower| {
        let mut line = jobs
            .counts()
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join("  ");
        if let Some(rate) = share {
            line.push_str(&format!("  ETA {:.0} s", jobs.unsettled() as f64 / rate));
        }
        line
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
        return Err(Failure::timeout(format!(
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
