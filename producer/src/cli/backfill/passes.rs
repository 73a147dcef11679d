//! The passes over the spooled input after pass 1: settle rows that share a natural key,
//! ask the queue what each unit would do (new, unchanged, changed since an earlier run),
//! and enqueue. Each reads the spool again in file order; none holds the file in memory.

use super::input::{key_hash, Scan, Spool};
use super::Failure;
use onboard_producer::backfill::repeats::{group_key, resolve, Decision};
use onboard_producer::backfill::{read_rows, BackfillRow, FileFormat, RowError, RowKind};
use onboard_producer::{Producer, Work, WorkCheck, WorkKeys, WorkOptions};
use onboard_shared::queue::Enqueued;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

/// Rows per chunk: about one enqueue pipeline's worth (see `JobStore::enqueue_many`).
pub(super) const CHUNK: usize = 2_000;

/// How to read the spool back.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub format: FileFormat,
    pub kind: Option<RowKind>,
}

/// One unit to enqueue: a valid row's work, or what the rows sharing its key make together.
pub(super) struct Unit {
    pub line: u64,
    pub span: Range<u64>,
    pub work: Work,
}

/// What rows that share a key became, by line (rows with a key of their own have none).
#[derive(Default)]
pub(super) struct Decisions {
    pub by_line: BTreeMap<u64, Decision>,
    /// The bytes of each of those rows in the spool.
    pub spans: HashMap<u64, Range<u64>>,
    /// Per line that enqueues a unit for several rows, how many others it stands for.
    followers: HashMap<u64, u64>,
}

impl Decisions {
    /// Lines that are duplicates of another line: `(line, of)`.
    pub(super) fn duplicates(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_line.iter().filter_map(|(line, d)| match d {
            Decision::Duplicate { of } => Some((*line, *of)),
            _ => None,
        })
    }

    /// The rows that a unit enqueued at `line` stands for besides its own (merged into it
    /// or duplicates of it), as errors saying why they go with it.
    pub(super) fn followers(&self, anchor: &RowError) -> Vec<RowError> {
        self.by_line
            .iter()
            .filter(|(_, d)| {
                matches!(d, Decision::Merged { into: l } | Decision::Duplicate { of: l } if *l == anchor.line)
            })
            .filter_map(|(line, _)| {
                let span = self.spans.get(line)?.clone();
                let rule = format!("goes with line {}: {}", anchor.line, anchor.rule);
                Some(RowError::new(*line, anchor.field.clone(), rule).at(span))
            })
            .collect()
    }

    /// How many rows the unit enqueued at `line` stands for: its own and those merged into
    /// it or repeating it.
    pub(super) fn rows_of(&self, line: u64) -> u64 {
        1 + self.followers.get(&line).copied().unwrap_or(0)
    }

    /// Lines whose devices joined another line's customer.
    pub(super) fn merged(&self) -> usize {
        self.by_line
            .values()
            .filter(|d| matches!(d, Decision::Merged { .. }))
            .count()
    }
}

/// Reads the rows of the keys pass 1 saw more than once and decides them; conflicts are
/// invalid rows and join `scan.invalid`.
pub(super) fn settle_repeats(scan: &mut Scan, layout: Layout) -> Result<Decisions, Failure> {
    let mut out = Decisions::default();
    if scan.repeated.is_empty() {
        return Ok(out);
    }
    let mut groups: HashMap<String, Vec<BackfillRow>> = HashMap::new();
    for row in read_rows(scan.spool.reader()?, layout.format, layout.kind).flatten() {
        let key = group_key(&row.item);
        if scan.repeated.contains(&key_hash(&key)) {
            groups.entry(key).or_default().push(row);
        }
    }
    for rows in groups.values().filter(|rows| rows.len() > 1) {
        out.spans
            .extend(rows.iter().map(|r| (r.line, r.span.clone())));
        for (line, decision) in resolve(rows) {
            match &decision {
                Decision::Conflict(e) => scan.invalid.push(e.clone()),
                Decision::Merged { into: anchor } | Decision::Duplicate { of: anchor } => {
                    *out.followers.entry(*anchor).or_default() += 1
                }
                Decision::Enqueue(_) => {}
            }
            out.by_line.insert(line, decision);
        }
    }
    scan.invalid.sort_by_key(|e| e.line);
    Ok(out)
}

/// The units of the spool in file order: invalid rows, conflicts, duplicates, merged rows
/// and the lines in `skip` left out.
pub(super) fn units<'a>(
    spool: &Spool,
    layout: Layout,
    decisions: &'a Decisions,
    skip: &'a HashSet<u64>,
) -> Result<impl Iterator<Item = Unit> + 'a, Failure> {
    let rows = read_rows(spool.reader()?, layout.format, layout.kind);
    Ok(rows.flatten().filter_map(move |row| {
        if skip.contains(&row.line) {
            return None;
        }
        let work = match decisions.by_line.get(&row.line) {
            None => row.item,
            Some(Decision::Enqueue(work)) => work.clone(),
            Some(_) => return None,
        };
        Some(Unit {
            line: row.line,
            span: row.span,
            work,
        })
    }))
}

/// What the queue said about the units before anything was enqueued.
#[derive(Default)]
pub(super) struct Checked {
    pub units: u64,
    /// Rows (merged and repeated ones included) whose unit is new.
    pub new: u64,
    /// Rows whose unit an earlier run enqueued with the same payload.
    pub unchanged: u64,
    /// Units whose key holds a job with another payload.
    pub changed_units: u64,
    /// Their rows, as invalid rows.
    pub changed: Vec<RowError>,
}

/// Asks the queue, chunk by chunk, what enqueuing every unit would do; the rows of a
/// changed unit (and those that go with it) are in `changed`, in line order.
pub(super) async fn check(
    producer: &Producer,
    spool: &Spool,
    layout: Layout,
    decisions: &Decisions,
) -> Result<Checked, Failure> {
    let mut out = Checked::default();
    let none = HashSet::new();
    let mut units = units(spool, layout, decisions, &none)?.peekable();
    while units.peek().is_some() {
        let (at, work): (Vec<(u64, Range<u64>)>, Vec<Work>) = units
            .by_ref()
            .take(CHUNK)
            .map(|u| ((u.line, u.span), u.work))
            .unzip();
        let checks = producer.check_work(&work, WorkKeys::NaturalKey).await?;
        for ((line, span), check) in at.into_iter().zip(checks) {
            out.units += 1;
            let rows = decisions.rows_of(line);
            match check {
                WorkCheck::New => out.new += rows,
                WorkCheck::Unchanged { .. } => out.unchanged += rows,
                WorkCheck::Changed {
                    kind,
                    first_id,
                    state,
                } => {
                    out.changed_units += 1;
                    out.changed.push(
                        RowError::new(
                            line,
                            "-",
                            format!(
                            "changed since an earlier run: its {kind} job {first_id} ({state}) \
                             was enqueued with the same key and another payload"
                        ),
                        )
                        .at(span),
                    )
                }
            }
        }
    }
    // A changed unit takes the rows merged into it (or repeating it) along.
    let followers: Vec<RowError> = out
        .changed
        .iter()
        .flat_map(|e| decisions.followers(e))
        .collect();
    out.changed.extend(followers);
    out.changed.sort_by_key(|e| e.line);
    Ok(out)
}

/// What one chunk's enqueue did.
pub(super) struct ChunkDone {
    /// Units it held.
    pub units: u64,
    /// One entry per job (an `onboard-customer` unit makes two).
    pub jobs: Vec<Enqueued>,
}

/// The enqueue pass's reader: parses the spool on its own thread and hands over chunks of
/// units, so parsing the next chunks overlaps Redis running the ones before. The channel is
/// bounded, which keeps memory flat: the reader waits while enough chunks are queued.
pub(super) fn spawn_reader(
    spool: std::sync::Arc<Spool>,
    layout: Layout,
    decisions: std::sync::Arc<Decisions>,
    skip: HashSet<u64>,
    in_flight: usize,
) -> tokio::sync::mpsc::Receiver<Result<Vec<Work>, Failure>> {
    let (tx, rx) = tokio::sync::mpsc::channel(in_flight);
    std::thread::spawn(move || {
        let mut units = match units(&spool, layout, &decisions, &skip) {
            Ok(units) => units,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let chunk: Vec<Work> = units.by_ref().take(CHUNK).map(|u| u.work).collect();
            // A send fails only when the enqueue side stopped (an error): stop reading.
            if chunk.is_empty() || tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Enqueues one chunk of units.
pub(super) async fn enqueue_chunk(
    producer: &Producer,
    chunk: Vec<Work>,
    options: &WorkOptions,
) -> Result<ChunkDone, Failure> {
    let units = chunk.len() as u64;
    let jobs = producer
        .enqueue_work(chunk, options)
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(ChunkDone { units, jobs })
}
