//! `onboard-sandbox`: a local HTTP server standing in for the three provider APIs (Tencent
//! IoT Explorer, Tencent Cloud intlpartnersmgt, POLYV), with its own signature checks, rate
//! limits, SMS inbox, counters and fault injection, for tests and local runs.
//!
//! This file holds the command line and startup; each concern lives in its own module.

mod admin;
mod envelope;
mod faults;
mod iot;
mod lock;
mod polyv;
mod ratelimit;
mod state;
mod stats;
mod tencentcloud;

use anyhow::Context;
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use onboard_shared::config::sandbox_defaults as defaults;
use state::{AppState, Credentials, Limits};
use std::io::Write;
use std::sync::Arc;

/// Command line (every option also readable from the environment).
#[derive(Debug, Parser)]
#[command(
    name = "onboard-sandbox",
    about = "Local stand-in for the IoT, Tencent Cloud and POLYV APIs"
)]
struct Cli {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "ONBOARD_SANDBOX_LISTEN", default_value = defaults::LISTEN)]
    listen: String,
    /// Do not enforce rate limits (arrivals are still counted).
    #[arg(long)]
    no_rate_limits: bool,
    /// IoT requests per second (whole provider).
    #[arg(long, default_value_t = 20)]
    iot_rate: u64,
    /// CreateAccount requests per second.
    #[arg(long, default_value_t = 5)]
    create_account_rate: u64,
    /// SendVerifyCode requests per second.
    #[arg(long, default_value_t = 20)]
    send_verify_code_rate: u64,
    /// GetCountryCodes requests per second.
    #[arg(long, default_value_t = 5)]
    get_country_codes_rate: u64,
    /// POLYV requests per second (whole provider).
    #[arg(long, default_value_t = 100)]
    polyv_rate: u64,
    /// Seed of the data and fault RNGs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Initial share of requests answered with a transient error.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Initial share of requests performed but answered only after --hang-ms.
    #[arg(long, default_value_t = 0.0)]
    timeout_rate: f64,
    /// Initial delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// How long a "timeout" answer is held back, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    hang_ms: u64,
    /// IoT AppKey accepted.
    #[arg(long, env = "ONBOARD_IOT__APP_KEY", default_value = defaults::IOT_APP_KEY)]
    iot_app_key: String,
    /// IoT AppSecret accepted.
    #[arg(long, env = "ONBOARD_IOT__APP_SECRET", default_value = defaults::IOT_APP_SECRET, hide_env_values = true, hide_default_value = true)]
    iot_app_secret: String,
    /// Tencent Cloud SecretId accepted.
    #[arg(long, env = "ONBOARD_TENCENTCLOUD__SECRET_ID", default_value = defaults::TC_SECRET_ID)]
    tc_secret_id: String,
    /// Tencent Cloud SecretKey accepted.
    #[arg(long, env = "ONBOARD_TENCENTCLOUD__SECRET_KEY", default_value = defaults::TC_SECRET_KEY, hide_env_values = true, hide_default_value = true)]
    tc_secret_key: String,
    /// POLYV appId accepted.
    #[arg(long, env = "ONBOARD_POLYV__APP_ID", default_value = defaults::POLYV_APP_ID)]
    polyv_app_id: String,
    /// POLYV appSecret accepted.
    #[arg(long, env = "ONBOARD_POLYV__APP_SECRET", default_value = defaults::POLYV_APP_SECRET, hide_env_values = true, hide_default_value = true)]
    polyv_app_secret: String,
}

/// All routes.
fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/exploreropen/serviceapi", post(iot::handle))
        .route("/", post(tencentcloud::handle))
        .route("/live/v2/app/add-custom-user", post(polyv::add_custom_user))
        .route("/live/v2/app/get-custom-user", get(polyv::get_custom_user))
        .route("/_sandbox/sms", get(admin::sms))
        .route("/_sandbox/stats", get(admin::stats))
        .route("/_sandbox/created", get(admin::created))
        .route(
            "/_sandbox/faults",
            post(admin::faults).get(admin::current_faults),
        )
        .route("/_sandbox/reset", post(admin::reset))
        .route("/_sandbox/data", get(admin::data))
        .with_state(state)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
    // Requests held by the timeout fault may hang for many seconds; do not let them keep
    // the process alive long after it was told to stop.
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        std::process::exit(0);
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("ONBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a human at a terminal; logs captured to files stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let creds = Credentials {
        iot_app_key: cli.iot_app_key,
        iot_app_secret: cli.iot_app_secret,
        tc_secret_id: cli.tc_secret_id,
        tc_secret_key: cli.tc_secret_key,
        polyv_app_id: cli.polyv_app_id,
        polyv_app_secret: cli.polyv_app_secret,
    };
    let limits = Limits {
        enabled: !cli.no_rate_limits,
        iot: cli.iot_rate,
        create_account: cli.create_account_rate,
        send_verify_code: cli.send_verify_code_rate,
        get_country_codes: cli.get_country_codes_rate,
        polyv: cli.polyv_rate,
    };
    let faults = faults::FaultSettings {
        seed: cli.seed,
        error_rate: cli.error_rate,
        timeout_rate: cli.timeout_rate,
        latency_ms: cli.latency_ms,
        hang_ms: cli.hang_ms,
        ..faults::FaultSettings::default()
    };
    tracing::info!(?limits, ?faults, "starting");
    let state = Arc::new(AppState::new(creds, limits, cli.seed, faults));

    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("bind {}", cli.listen))?;
    let addr = listener.local_addr().context("local address")?;
    {
        // Tests wait for exactly this line, so it goes to stdout and is flushed at once.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{} http://{addr}", onboard_shared::ready::SANDBOX)?;
        out.flush()?;
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serve")?;
    Ok(())
}
