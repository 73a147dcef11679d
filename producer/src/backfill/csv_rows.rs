//! CSV rows: a header row of snake_case field names, then one row per job.
//!
//! Line numbers are counted here from the bytes each record spans, not taken from the csv
//! crate: its record positions count a quoted line break as no line and start a record at
//! the blank lines before it, so every number after either was off.

use super::fields::{self, Source};
use super::{finish_row, unknown_kind_rule, BackfillRow, RowError, RowKind, MISSING_KIND};
use onboard_shared::jobs::DeviceInfo;
use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// The bytes read from the input that no record has claimed yet.
#[derive(Default)]
struct Window {
    /// The input offset of `bytes[0]`.
    base: u64,
    bytes: Vec<u8>,
}

/// The input, remembering what it hands the csv reader until the records are counted.
struct Recording<R> {
    inner: R,
    window: Arc<Mutex<Window>>,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut w) = self.window.lock() {
            w.bytes.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

enum State {
    Header,
    Rows,
    Done,
}

/// The CSV row iterator.
pub(super) struct CsvRows<R: Read> {
    rdr: csv::Reader<Recording<R>>,
    window: Arc<Mutex<Window>>,
    kind: Option<RowKind>,
    state: State,
    record: csv::ByteRecord,
    /// The physical line the next record's bytes start on.
    next_line: u64,
    /// Column name -> index.
    index: HashMap<String, usize>,
    /// The header's bytes in the input.
    header_span: Option<Range<u64>>,
    /// The decoded cells of the current row (reused).
    cells: Vec<String>,
    io_error: Option<std::io::Error>,
}

impl<R: Read> CsvRows<R> {
    pub(super) fn new(reader: R, kind: Option<RowKind>) -> Self {
        let window = Arc::new(Mutex::new(Window::default()));
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false) // read by hand, to report header problems at their line
            .flexible(true) // field counts are checked here, after blank lines are skipped
            .trim(csv::Trim::Headers)
            .from_reader(Recording {
                inner: reader,
                window: window.clone(),
            });
        CsvRows {
            rdr,
            window,
            kind,
            state: State::Header,
            record: csv::ByteRecord::new(),
            next_line: 1,
            index: HashMap::new(),
            header_span: None,
            cells: Vec::new(),
            io_error: None,
        }
    }

    pub(super) fn take_io_error(&mut self) -> Option<std::io::Error> {
        self.io_error.take()
    }

    pub(super) fn into_inner(self) -> R {
        self.rdr.into_inner().inner
    }

    pub(super) fn header_span(&self) -> Option<Range<u64>> {
        self.header_span.clone()
    }

    /// The line the record just read starts on and the bytes it spans (blank lines before
    /// it excluded), and moves the line count past it.
    fn locate(&mut self) -> (u64, Range<u64>) {
        let start = self.record.position().map_or(0, |p| p.byte());
        let mut end = self.rdr.position().byte();
        let mut line = self.next_line;
        let Ok(mut w) = self.window.lock() else {
            return (line, start..end);
        };
        // A record's `\n` after its `\r` may already be claimed by the one before.
        let start = start.max(w.base);
        let from = ((start - w.base) as usize).min(w.bytes.len());
        let mut to = (end.saturating_sub(w.base) as usize).min(w.bytes.len());
        // The csv reader ends a record at its `\r`; its `\n` belongs to it too.
        if to > from && w.bytes[to - 1] == b'\r' && w.bytes.get(to) == Some(&b'\n') {
            to += 1;
            end += 1;
        }
        let bytes = &w.bytes[from..to];
        // The csv reader skips empty lines as part of the next record.
        let blank = bytes
            .iter()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .count();
        line += bytes[..blank].iter().filter(|b| **b == b'\n').count() as u64;
        self.next_line += bytes.iter().filter(|b| **b == b'\n').count() as u64;
        w.bytes.drain(..to);
        w.base += to as u64;
        (line, start + blank as u64..end)
    }

    /// Reads and checks the header row. `Err` ends the iteration.
    fn read_header(&mut self) -> Result<(), RowError> {
        loop {
            match self.rdr.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return Err(RowError::whole(1, "empty file: no header row")),
                Err(e) => return Err(self.csv_error(&e)),
            }
            let (line, span) = self.locate();
            if is_blank(&self.record) {
                continue;
            }
            self.header_span = Some(span);
            return self.check_header(line);
        }
    }

    fn check_header(&mut self, line: u64) -> Result<(), RowError> {
        let allowed = fields::allowed_columns(self.kind);
        for (i, raw) in self.record.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|_| {
                RowError::whole(line, format!("header column {} is not valid UTF-8", i + 1))
            })?;
            let name = name
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            if !allowed.contains(&name.as_str()) {
                let (field, what) = if name.is_empty() {
                    ("-".to_string(), " with an empty name")
                } else {
                    (name.clone(), "")
                };
                return Err(RowError::new(
                    line,
                    field,
                    format!(
                        "unknown column{what} (expected one of: {})",
                        allowed.join(", ")
                    ),
                ));
            }
            if self.index.insert(name.clone(), i).is_some() {
                return Err(RowError::new(line, name, "duplicate column"));
            }
        }
        if let Some(kind) = self.kind {
            let (required, _) = fields::columns(kind);
            if let Some(missing) = required.iter().find(|c| !self.index.contains_key(**c)) {
                return Err(RowError::new(
                    line,
                    *missing,
                    format!(
                        "missing column (required for {kind} rows: {})",
                        required.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Turns the current record into a row.
    fn row(&mut self, line: u64) -> Result<BackfillRow, RowError> {
        if self.record.len() != self.index.len() {
            return Err(RowError::whole(
                line,
                format!(
                    "has {} field(s), expected {} like the header \
                     (a stray comma, or an unbalanced quote?)",
                    self.record.len(),
                    self.index.len()
                ),
            ));
        }
        self.cells.clear();
        for (i, raw) in self.record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(s) => self.cells.push(s.to_string()),
                Err(_) => {
                    let column = self
                        .index
                        .iter()
                        .find(|(_, &j)| j == i)
                        .map(|(c, _)| c.as_str())
                        .unwrap_or("?");
                    return Err(RowError::whole(
                        line,
                        format!("not valid UTF-8 (in column `{column}`)"),
                    ));
                }
            }
        }
        let cells = Cells {
            index: &self.index,
            cells: &self.cells,
        };
        let kind = match self.kind {
            Some(k) => k,
            None => match cells.text("kind").map(str::trim).filter(|k| !k.is_empty()) {
                None => return Err(RowError::new(line, "kind", MISSING_KIND)),
                Some(k) => k
                    .parse::<RowKind>()
                    .map_err(|_| RowError::new(line, "kind", unknown_kind_rule(k)))?,
            },
        };
        if self.kind.is_none() {
            let (required, _) = fields::columns(kind);
            if let Some(missing) = required.iter().find(|c| !self.index.contains_key(**c)) {
                return Err(RowError::new(
                    line,
                    *missing,
                    format!("missing column (required for {kind} rows)"),
                ));
            }
        }
        let (item, errors) = fields::build(kind, &cells);
        finish_row(line, item, errors)
    }

    /// A csv error as a whole-row error (after it, the iteration stops).
    fn csv_error(&mut self, e: &csv::Error) -> RowError {
        match e.kind() {
            csv::ErrorKind::Io(_) => {
                if let csv::ErrorKind::Io(io) = e.kind() {
                    self.io_error = Some(std::io::Error::new(io.kind(), io.to_string()));
                }
                RowError::whole(self.next_line, "cannot read the input")
            }
            _ => RowError::whole(self.next_line, format!("malformed CSV: {e}")),
        }
    }
}

/// A line of nothing but whitespace (or an empty quoted cell) is no row.
fn is_blank(record: &csv::ByteRecord) -> bool {
    record.len() == 1 && std::str::from_utf8(&record[0]).is_ok_and(|s| s.trim().is_empty())
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<BackfillRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.state {
                State::Done => return None,
                State::Header => match self.read_header() {
                    Ok(()) => self.state = State::Rows,
                    Err(e) => {
                        self.state = State::Done;
                        if self.io_error.is_some() {
                            return None;
                        }
                        return Some(Err(e));
                    }
                },
                State::Rows => match self.rdr.read_byte_record(&mut self.record) {
                    Ok(true) => {
                        let (line, span) = self.locate();
                        if is_blank(&self.record) {
                            continue;
                        }
                        return Some(match self.row(line) {
                            Ok(row) => Ok(row.at(span)),
                            Err(e) => Err(e.at(span)),
                        });
                    }
                    Ok(false) => {
                        self.state = State::Done;
                        return None;
                    }
                    Err(e) => {
                        // Field counts are checked by hand, so any error here is the input
                        // itself (I/O): stop after it.
                        self.state = State::Done;
                        let err = self.csv_error(&e);
                        if self.io_error.is_some() {
                            return None;
                        }
                        return Some(Err(err));
                    }
                },
            }
        }
    }
}

/// The cells of one row, by column name.
struct Cells<'a> {
    index: &'a HashMap<String, usize>,
    cells: &'a [String],
}

impl Source for Cells<'_> {
    /// An absent column and an empty cell are both "not given".
    fn text(&self, column: &str) -> Option<&str> {
        self.index
            .get(column)
            .and_then(|&i| self.cells.get(i))
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, String> {
        fields::parse_devices_cell(self.text("devices").unwrap_or(""))
    }
}
