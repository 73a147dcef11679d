//! The enqueue pass's progress: a bar with rate and ETA on a terminal, a plain line every
//! few seconds otherwise (logs, CI).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub(super) struct Progress {
    bar: ProgressBar,
    plain: bool,
    last_plain: Instant,
    /// A hidden bar has no length, so plain lines take the total from here.
    total: u64,
}

impl Progress {
    pub(super) fn new(total: u64, what: &str) -> Progress {
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

    pub(super) fn inc(&mut self, n: u64) {
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

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
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
