//! `onboard-bench <scenario> [--quick]`: measures onboard against DESIGN.md's performance
//! targets and against apalis-redis 1.0.0 on the same machine.
//!
//! Every scenario starts its own private redis-server (no persistence, free port, temp
//! dir), prints one summary line on stdout and writes `target/bench/<scenario>.json`. The
//! exit code is non-zero when a scenario could not run; a missed target is not an error
//! (it reads `"met": false` in the record and `MISSED` in the summary line).

mod bullmq;
mod harness;
mod ours;
mod peer;
mod probe;
mod report;
mod scenarios;

use clap::Parser;
use futures::FutureExt;
use std::process::ExitCode;

/// Benchmarks onboard's queue, worker and producer (and apalis-redis 1.0.0 as the peer).
#[derive(Parser, Debug)]
#[command(about)]
struct Cli {
    /// enqueue, drain-stub, drain-sandbox, pickup, ratelimit, fairness, memory, scale, http,
    /// console or all.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(
        ["enqueue", "drain-stub", "drain-sandbox", "pickup", "ratelimit", "fairness", "memory", "scale", "http", "console", "all"]
    ))]
    scenario: String,
    /// Small sizes (the whole `all --quick` runs in about two minutes; for CI).
    #[arg(long)]
    quick: bool,
    /// Do not run `cargo build` for onboard-producer/-worker/-sandbox first; use the
    /// binaries already next to this executable.
    #[arg(long)]
    no_build: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    onboard_harness::set_no_build(cli.no_build);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("onboard-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let names: Vec<&str> = if cli.scenario == "all" {
        scenarios::ALL.to_vec()
    } else {
        vec![cli.scenario.as_str()]
    };
    let mut failed = Vec::new();
    for name in names {
        let quick = cli.quick;
        // A panic in one scenario (a setup `expect`) is reported and the others still run.
        let outcome = runtime
            .block_on(std::panic::AssertUnwindSafe(scenarios::run(name, quick)).catch_unwind());
        match outcome {
            Ok(Ok(record)) => {
                println!("{}", record.summary);
                match record.write() {
                    Ok(path) => eprintln!("onboard-bench: wrote {}", path.display()),
                    Err(e) => {
                        eprintln!("onboard-bench: {name}: cannot write the record: {e:#}");
                        failed.push(name);
                    }
                }
            }
            Ok(Err(e)) => {
                println!("{name}: FAILED to run: {e:#}");
                failed.push(name);
            }
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                println!("{name}: FAILED to run: panicked: {why}");
                failed.push(name);
            }
        }
    }
    // Worker tasks of a scenario that failed midway may still be running.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "onboard-bench: scenarios that did not run: {}",
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}
