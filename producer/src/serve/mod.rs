//! `onboard-producer serve`: the HTTP API (axum), so apps in any language can enqueue,
//! follow and complete jobs. One role per module:
//!
//! * [`auth`]: bearer tokens (hashed in the configuration), roles and per-token rates;
//! * [`errors`]: the one error shape and its status codes;
//! * [`jobs`]: enqueue one job, read it, verify codes;
//! * [`sse`]: follow a job to its end as server-sent events;
//! * [`batches`]: NDJSON uploads as one bulk batch, and steering batches;
//! * [`control`]: queue pauses, dead letters, statistics (operator role);
//! * [`owners`]: which token enqueued which job (an app token sees only its own);
//! * [`health`]: `/healthz` and `/readyz`;
//! * [`openapi`]: the OpenAPI 3.1 document at `/v1/openapi.json`;
//! * [`webhooks`]: terminal states POSTed, signed, to the tokens' callback URLs;
//! * [`console`]: the operator console at `/console` (browser pages, same tokens).
//!
//! Every handler calls the same library functions as the matching CLI command.

pub mod auth;
pub mod batches;
pub mod console;
pub mod control;
pub mod errors;
pub mod health;
pub mod jobs;
pub mod openapi;
pub mod owners;
pub mod sse;
pub mod webhooks;

use super::cli::{Ctx, Failure};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use errors::{ApiError, ErrorCode};
use onboard_producer::Producer;
use onboard_shared::config::{ApiConfig, ApiRole, ApiToken, Config};
use onboard_shared::jobs::JobKind;
use std::sync::Arc;

/// `serve` arguments.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default: `api.listen` of the configuration).
    #[arg(long)]
    listen: Option<String>,
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The queues.
    pub producer: Producer,
    /// The tokens and their rates.
    pub tokens: Arc<auth::Tokens>,
    /// The `[api]` configuration.
    pub api: Arc<ApiConfig>,
    /// Which token enqueued which job.
    pub owners: owners::Owners,
}

/// The routes.
pub fn router(state: AppState) -> Router {
    let limit = state.api.body_limit_bytes;
    Router::new()
        // One route: `{id}` is the kind to enqueue for POST, a job id for GET.
        .route("/v1/jobs/{id}", post(jobs::enqueue).get(jobs::status))
        .route("/v1/jobs/{id}/events", get(sse::follow))
        .route("/v1/jobs/{id}/verify-code", post(jobs::verify_code))
        .route("/v1/jobs/{id}/resend-code", post(jobs::resend_code))
        .route(
            "/v1/batches",
            post(batches::create).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/batches/{id}", get(batches::status))
        .route("/v1/batches/{id}/{action}", post(batches::control))
        .route("/v1/queues/{kind}/{action}", post(control::queue))
        .route("/v1/dead-letters", get(control::dead_list))
        .route("/v1/dead-letters/retry", post(control::dead_retry))
        .route("/v1/dead-letters/purge", post(control::dead_purge))
        .route("/v1/stats", get(control::stats))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(console::routes())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Runs `serve` until the process is stopped.
pub async fn run(ctx: &Ctx, args: ServeArgs) -> Result<(), Failure> {
    init_logging();
    let api = ctx.cfg.api.clone();
    let tokens = auth::Tokens::new(&api).map_err(Failure::invalid)?;
    if api.tokens.is_empty() {
        tracing::warn!("no api.tokens configured: every request but the probes answers 401");
    }
    let producer = ctx.producer().await?;
    let owners = owners_of(&ctx.cfg, &producer);
    webhooks::start(&ctx.cfg, producer.store().clone(), owners.clone());
    let state = AppState {
        producer,
        tokens: Arc::new(tokens),
        api: Arc::new(api.clone()),
        owners,
    };
    let listen = args.listen.unwrap_or(api.listen);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Failure::infra(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::infra(format!("cannot read the listening address: {e}")))?;
    println!("{} http://{addr}", onboard_shared::ready::SERVER);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stopped())
        .await
        .map_err(|e| Failure::infra(format!("serving: {e}")))
}

/// The name of the operator token [`spawn_in_process`] makes.
pub const DEMO_TOKEN_NAME: &str = "demo";

/// Serves the HTTP API in this process on a free port (or 127.0.0.1:8090 when free), with
/// one new operator token for every kind (the demo); returns its URL and the token.
pub async fn spawn_in_process(
    cfg: &Config,
    producer: Producer,
) -> Result<(String, String), Failure> {
    let token = auth::new_token();
    let mut api = cfg.api.clone();
    api.tokens = vec![ApiToken {
        name: DEMO_TOKEN_NAME.into(),
        sha256: auth::token_hash(&token),
        kinds: JobKind::ALL.to_vec(),
        role: ApiRole::Operator,
        rate_per_sec: None,
        burst: None,
        webhook: None,
    }];
    let owners = owners_of(cfg, &producer);
    let state = AppState {
        producer,
        tokens: Arc::new(auth::Tokens::new(&api).map_err(Failure::invalid)?),
        api: Arc::new(api),
        owners,
    };
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:8090").await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Failure::infra(format!("cannot listen: {e}")))?,
    };
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::infra(format!("cannot read the listening address: {e}")))?;
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Ok((format!("http://{addr}"), token))
}

/// Resolves on SIGTERM or Ctrl-C: requests in flight finish, new ones are refused.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn owners_of(cfg: &Config, producer: &Producer) -> owners::Owners {
    owners::Owners::new(producer.store().connection(), cfg.queue.retention_secs)
}

/// Logs to stderr, filtered by `ONBOARD_LOG` (default `info`). Job fields are never logged.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ONBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
