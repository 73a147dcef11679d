//! The operator console at `/console`: every job seen and steered from a browser, on the
//! API server, for operator tokens only. Server-side pages (maud templates) with one small
//! script of our own (`assets/console.js`) that keeps pages current over server-sent
//! events. One role per module:
//!
//! * [`session`]: the login session (Redis, HttpOnly SameSite=Strict cookie, CSRF value);
//! * [`login`]: logging in and out;
//! * [`login_link`]: one-time login links (the demo prints one);
//! * [`pages`]: the layout, action forms, error pages, times;
//! * [`overview`]: per kind counts, rates, limit share, pause and resume (live);
//! * [`jobs`]: jobs by kind, state, lane and batch, paged; find by id or natural key;
//! * [`job`]: one job's timeline, masked fields and actions (live);
//! * [`dead`]: dead letters by error code, retry or purge a group;
//! * [`batches`]: progress, ETA, pause, resume, cancel;
//! * [`awaiting`]: jobs awaiting a code, with the time left; supply or resend.
//!
//! Every answer carries a Content-Security-Policy that allows only this server's own
//! script and style (no inline code), refuses framing, and is not cached. Every action is a
//! POST checked against the session's CSRF value. No page holds a secret: fields are
//! masked as in the logs, results redacted, codes never echoed.

pub mod awaiting;
pub mod batches;
pub mod dead;
pub mod job;
pub mod jobs;
pub mod login;
pub mod login_link;
pub mod overview;
pub mod pages;
pub mod session;

use super::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use session::Session;

/// The policy every console answer carries.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The console's routes (merged into the API server's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/login", get(login::page).post(login::login))
        .route("/console/logout", post(login::logout))
        .route("/console/jobs", get(jobs::page))
        .route("/console/find", get(jobs::find))
        .route("/console/jobs/{id}", get(job::page).post(job::act))
        .route("/console/dead", get(dead::page).post(dead::act))
        .route("/console/batches", get(batches::page))
        .route("/console/batches/{id}", post(batches::act))
        .route("/console/awaiting", get(awaiting::page))
        .route("/console/queues/{kind}", post(queue_action))
        .route("/console/events/overview", get(overview::events))
        .route("/console/events/jobs/{id}", get(job::events))
        .route("/console/static/console.js", get(script))
        .route("/console/static/console.css", get(style))
        .layer(axum::middleware::map_response(secure))
}

/// The headers every console answer carries.
async fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
}

/// A queue pause or resume form.
#[derive(serde::Deserialize)]
struct QueueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_to: String,
    action: String,
}

/// `POST /console/queues/{kind}`: pause or resume claiming a kind in every worker.
async fn queue_action(
    State(state): State<AppState>,
    session: Session,
    Path(kind): Path<String>,
    Form(f): Form<QueueForm>,
) -> Response {
    if !session.csrf_ok(&f.csrf) {
        return pages::forbidden_csrf();
    }
    let Ok(kind) = kind.parse::<onboard_shared::jobs::JobKind>() else {
        return pages::failed(StatusCode::NOT_FOUND, "No job kind of that name.");
    };
    let paused = match f.action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return pages::failed(StatusCode::NOT_FOUND, "The action is pause or resume."),
    };
    if let Err(e) = state.producer.store().pause_kind(kind, paused).await {
        return pages::unavailable(&e);
    }
    tracing::info!(token = %session.operator, %kind, paused, "console queue action");
    let what = if paused {
        "paused: no worker claims its jobs"
    } else {
        "resumed"
    };
    pages::done(&session, &f.return_to, &format!("{kind} {what}.")).await
}
