//! Command-line definitions and dispatch. Each command lives in its own module.

pub(crate) mod backfill;
mod console_link;
mod control;
mod demo;
mod enqueue;
mod inspect;
mod rekey;
mod token;

use clap::{Parser, Subcommand};
use onboard_producer::{Producer, ProducerError};
use onboard_shared::config::Config;
use onboard_shared::queue::QueueError;
use std::path::PathBuf;

/// What `--help` says the exit codes mean (the README says the same).
const EXIT_CODES: &str = "Exit codes:
  0  done
  1  invalid input: bad arguments, unknown or malformed ids, invalid rows, idempotency
     conflicts (nothing was enqueued)
  2  infrastructure failure (Redis unreachable, a temporary file not writable, ...)
  3  a wait (wait, backfill --wait) timed out; the jobs go on";

/// Puts provisioning jobs into onboard and follows them.
#[derive(Parser, Debug)]
#[command(name = "onboard-producer", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// TOML configuration file; `ONBOARD_*` environment variables override it.
    #[arg(long, env = "ONBOARD_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print data as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Enqueue one job, one flag per field.
    Enqueue(enqueue::EnqueueArgs),
    /// Enqueue every row of a CSV or JSON Lines file (all rows validated first).
    Backfill(backfill::BackfillArgs),
    /// Show one job.
    Status {
        /// The job id.
        job_id: String,
        /// Include secret result fields (e.g. a registered user's app secret).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Wait until a job succeeds, dies, expires or awaits a code.
    Wait {
        /// The job id.
        job_id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Print state changes from the events stream.
    Events {
        /// Keep following new events.
        #[arg(long)]
        follow: bool,
        /// Start after this stream id (`0` = from the beginning).
        #[arg(long, default_value = "0")]
        from: String,
    },
    /// Jobs per kind per state.
    Stats,
    /// Dead-letter operations.
    #[command(subcommand)]
    Dead(inspect::DeadCommand),
    /// Supply the 6-digit verify code a create-account job awaits.
    VerifyCode {
        /// The job id.
        job_id: String,
        /// The 6-digit code the customer received.
        code: String,
    },
    /// Send a create-account job back through phase 1 (a new code is texted).
    ResendCode {
        /// The job id.
        job_id: String,
    },
    /// List IoT Explorer customers (ServiceGetCustomerList), page by page.
    Customers(inspect::CustomersArgs),
    /// Backfill runs: list, status, pause, resume, cancel.
    #[command(subcommand)]
    Batch(control::BatchCommand),
    /// Pause or resume claiming a job kind in every worker.
    #[command(subcommand)]
    Queue(control::QueueCommand),
    /// Run everything end to end on this machine against the local sandbox.
    Demo(demo::DemoArgs),
    /// Re-encrypt everything in Redis with the first key of ONBOARD_ENCRYPTION_KEY (key
    /// rotation: configure `new,old`, run this, then configure `new` alone).
    Rekey,
    /// Serve the HTTP API (see the README's HTTP API section).
    Serve(crate::serve::ServeArgs),
    /// Print a new random API token and the SHA-256 to configure for it.
    Token,
    /// Print a one-time login link to the operator console for an operator token of
    /// [[api.tokens]] (it logs in once, within an hour).
    ConsoleLink {
        /// The token's name in [[api.tokens]].
        token_name: String,
    },
}

/// A failed command: what to print and the exit code.
pub struct Failure {
    /// 1 invalid input, 2 infrastructure, 3 a wait that timed out.
    pub code: u8,
    /// The message.
    pub message: String,
}

impl Failure {
    /// Bad input: nothing changed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// The infrastructure failed.
    pub fn infra(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// A wait ran out of time: nothing failed, the jobs are not done yet.
    pub fn timeout(message: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

impl From<ProducerError> for Failure {
    fn from(e: ProducerError) -> Self {
        if e.is_infrastructure() {
            Failure::infra(e.to_string())
        } else {
            Failure::invalid(e.to_string())
        }
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        ProducerError::from(e).into()
    }
}

/// What every command gets.
pub struct Ctx {
    pub(crate) cfg: Config,
    json: bool,
}

impl Ctx {
    pub(crate) async fn producer(&self) -> Result<Producer, Failure> {
        Producer::connect(&self.cfg).await.map_err(|e| match e {
            ProducerError::Queue(QueueError::Cipher(c)) => Failure::invalid(c.to_string()),
            ProducerError::Queue(e @ QueueError::KeyMismatch { .. }) => {
                Failure::invalid(e.to_string())
            }
            other => Failure::infra(format!(
                "cannot reach Redis at {}: {other}",
                self.cfg.redis_url_for_display()
            )),
        })
    }

    fn print<T: serde::Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("cannot print JSON: {e}"),
            }
        } else {
            println!("{}", human());
        }
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let cfg = Config::load(cli.config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
    let ctx = Ctx {
        cfg,
        json: cli.json,
    };
    match cli.command {
        Command::Enqueue(args) => enqueue::run(&ctx, args).await,
        Command::Backfill(args) => backfill::run(&ctx, args).await,
        Command::Status {
            job_id,
            show_secrets,
        } => inspect::status(&ctx, &job_id, show_secrets).await,
        Command::Wait { job_id, timeout } => inspect::wait(&ctx, &job_id, timeout).await,
        Command::Events { follow, from } => inspect::events(&ctx, follow, &from).await,
        Command::Stats => inspect::stats(&ctx).await,
        Command::Dead(cmd) => inspect::dead(&ctx, cmd).await,
        Command::VerifyCode { job_id, code } => inspect::verify_code(&ctx, &job_id, &code).await,
        Command::ResendCode { job_id } => inspect::resend_code(&ctx, &job_id).await,
        Command::Customers(args) => inspect::customers(&ctx, args).await,
        Command::Batch(cmd) => control::batch(&ctx, cmd).await,
        Command::Queue(cmd) => control::queue(&ctx, cmd).await,
        Command::Demo(args) => demo::run(&ctx, args).await,
        Command::Rekey => rekey::run(&ctx).await,
        Command::Serve(args) => crate::serve::run(&ctx, args).await,
        Command::Token => token::run(&ctx),
        Command::ConsoleLink { token_name } => console_link::run(&ctx, &token_name).await,
    }
}
