//! `--skip-invalid`'s rejects: a file of the same format as the input holding the rejected
//! rows exactly as they were (the CSV header first), so a user fixes it and runs it again,
//! and beside it a `.errors` file saying, per rejected row, its line in the rejects file,
//! its line in the input, the field and the rule (never a value).
//!
//! Both are created readable by their owner only: the rows may hold passwords, as the input
//! did.

use super::input::Spool;
use super::Failure;
use onboard_producer::backfill::RowError;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes the rejects and their errors.
pub(super) struct Rejects {
    pub rows_path: PathBuf,
    pub errors_path: PathBuf,
    rows: BufWriter<File>,
    errors: BufWriter<File>,
    /// The line the next row starts on in the rejects file.
    next_line: u64,
    /// Rows written.
    pub count: u64,
}

fn private_file(path: &Path) -> Result<BufWriter<File>, Failure> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map(BufWriter::new)
        .map_err(|e| Failure::infra(format!("cannot write {}: {e}", path.display())))
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

impl Rejects {
    /// Creates the files at `path` and `path.errors`; `header` is the CSV header's bytes.
    pub(super) fn create(path: &Path, header: Option<&[u8]>) -> Result<Rejects, Failure> {
        let mut errors_path = path.as_os_str().to_owned();
        errors_path.push(".errors");
        let errors_path = PathBuf::from(errors_path);
        let mut out = Rejects {
            rows: private_file(path)?,
            errors: private_file(&errors_path)?,
            rows_path: path.to_path_buf(),
            errors_path,
            next_line: 1,
            count: 0,
        };
        if let Some(header) = header {
            out.write_row(header)?;
        }
        Ok(out)
    }

    fn write_row(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let mut write = || -> std::io::Result<()> {
            self.rows.write_all(bytes)?;
            if !bytes.ends_with(b"\n") {
                // The input's last row had no line break; the next row needs one.
                self.rows.write_all(b"\n")?;
                self.next_line += 1;
            }
            Ok(())
        };
        write().map_err(|e| self.failed(e))?;
        self.next_line += newlines(bytes);
        Ok(())
    }

    /// Copies the rejected row out of the spool and writes its error.
    pub(super) fn add(&mut self, spool: &Spool, error: &RowError) -> Result<(), Failure> {
        let Some(span) = &error.span else {
            return Ok(());
        };
        let bytes = spool.bytes(span)?;
        let at = self.next_line;
        self.write_row(&bytes)?;
        self.count += 1;
        writeln!(
            self.errors,
            "line {at} (input line {}), field {}: {}",
            error.line, error.field, error.rule
        )
        .map_err(|e| self.failed(e))
    }

    /// Flushes both files.
    pub(super) fn finish(mut self) -> Result<(), Failure> {
        self.rows.flush().map_err(|e| self.failed(e))?;
        self.errors.flush().map_err(|e| self.failed(e))
    }

    fn failed(&self, e: std::io::Error) -> Failure {
        Failure::infra(format!("writing {}: {e}", self.rows_path.display()))
    }
}
