//! `onboard-producer`: the command line for people and scripts.
//!
//! Exit codes: 0 done, 1 invalid input (bad arguments, unknown or malformed ids, invalid
//! rows, idempotency conflicts: nothing was enqueued), 2 infrastructure failure (Redis
//! unreachable, ...), 3 a wait that timed out. Every error is printed once, here.

mod cli;
mod serve;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // Help and version are not errors; a bad command line is invalid input (exit 1),
            // never clap's default 2, which here means "infrastructure failure".
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("onboard-producer: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("onboard-producer: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
