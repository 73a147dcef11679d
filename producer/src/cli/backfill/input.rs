//! Pass 1 of a backfill: the one read of the input. Whatever the input is (a file, `-` for
//! standard input, a pipe, a FIFO, a process substitution), it is read exactly once, copied
//! as it is read into a private temporary file (the spool), and every row is validated on
//! the way. Every later pass reads the spool, so what is enqueued is exactly what was
//! validated, even if the input changes or cannot be read twice, and memory stays flat.

use super::Failure;
use onboard_producer::backfill::repeats::group_key;
use onboard_producer::backfill::{read_rows, FileFormat, RowError, RowKind, Rows};
use std::collections::HashSet;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The input as read once, in a temporary file only this process can read (mode 0600,
/// removed when dropped).
pub(super) struct Spool {
    file: tempfile::NamedTempFile,
}

impl Spool {
    /// A fresh reader from the start of the spool.
    pub(super) fn reader(&self) -> Result<BufReader<File>, Failure> {
        self.file
            .reopen()
            .map(BufReader::new)
            .map_err(|e| Failure::infra(format!("reading the spooled input back: {e}")))
    }

    /// The bytes at `span`.
    pub(super) fn bytes(&self, span: &Range<u64>) -> Result<Vec<u8>, Failure> {
        let read = || -> std::io::Result<Vec<u8>> {
            let mut f = self.file.reopen()?;
            f.seek(SeekFrom::Start(span.start))?;
            let mut out = vec![0; (span.end - span.start) as usize];
            f.read_exact(&mut out)?;
            Ok(out)
        };
        read().map_err(|e| Failure::infra(format!("reading the spooled input back: {e}")))
    }
}

/// What pass 1 found.
pub(super) struct Scan {
    pub spool: Spool,
    /// The CSV header's bytes (a rejects file starts with them).
    pub header: Option<Range<u64>>,
    /// Rows that are valid on their own.
    pub valid: u64,
    /// Every invalid row (or one header/file error), in file order.
    pub invalid: Vec<RowError>,
    /// Hashes of the natural keys that more than one valid row has (see `repeats`).
    pub repeated: HashSet<u64>,
}

/// The hash rows are grouped by in pass 1; a collision only costs a closer look.
pub(super) fn key_hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Copies what it reads into the spool. A failure to write the spool is flagged, so it is
/// told apart from a failure to read the input.
struct Tee<R> {
    input: R,
    spool: BufWriter<File>,
    spool_failed: Arc<AtomicBool>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        if let Err(e) = self.spool.write_all(&buf[..n]) {
            self.spool_failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        Ok(n)
    }
}

/// Opens the input: `-` is standard input.
fn open(path: &Path) -> Result<Box<dyn Read + Send>, Failure> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin()));
    }
    File::open(path)
        .map(|f| Box::new(f) as Box<dyn Read + Send>)
        .map_err(|e| Failure::invalid(format!("cannot open {}: {e}", path.display())))
}

/// Pass 1: reads the input once into the spool, validating every row.
pub(super) fn scan(
    path: &Path,
    format: FileFormat,
    kind: Option<RowKind>,
) -> Result<Scan, Failure> {
    let file = tempfile::NamedTempFile::new()
        .map_err(|e| Failure::infra(format!("cannot create a temporary file: {e}")))?;
    let copy = file
        .reopen()
        .map_err(|e| Failure::infra(format!("cannot open the temporary file: {e}")))?;
    let spool_failed = Arc::new(AtomicBool::new(false));
    let tee = Tee {
        input: open(path)?,
        spool: BufWriter::new(copy),
        spool_failed: spool_failed.clone(),
    };
    let mut rows: Rows<Tee<Box<dyn Read + Send>>> = read_rows(tee, format, kind);
    let (mut valid, mut invalid) = (0u64, Vec::new());
    let (mut seen, mut repeated) = (HashSet::new(), HashSet::new());
    for row in rows.by_ref() {
        match row {
            Ok(row) => {
                valid += 1;
                let h = key_hash(&group_key(&row.item));
                if !seen.insert(h) {
                    repeated.insert(h);
                }
            }
            Err(e) => invalid.push(e),
        }
    }
    if let Some(e) = rows.take_io_error() {
        return Err(if spool_failed.load(Ordering::Relaxed) {
            Failure::infra(format!("cannot write the temporary copy of the input: {e}"))
        } else {
            // Nothing was enqueued, whatever --skip-invalid says: the input is unusable.
            Failure::invalid(format!("cannot read {}: {e}", path.display()))
        });
    }
    let header = rows.header_span();
    rows.into_inner().spool.flush().map_err(|e| {
        Failure::infra(format!("cannot write the temporary copy of the input: {e}"))
    })?;
    Ok(Scan {
        spool: Spool { file },
        header,
        valid,
        invalid,
        repeated,
    })
}
