//! One job: its state (kept current by `console.js` from `/console/events/jobs/<id>`), its
//! timeline from the history its record keeps, its fields masked as in the logs, its result
//! without secrets, and the actions its state allows: retry or purge a dead letter (or its
//! whole error-code group), cancel a job that has not started, supply or resend a code.

use super::super::sse::job_updates;
use super::super::AppState;
use super::pages::{self, action_form, layout, Page};
use super::session::Session;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Form;
use futures::Stream;
use maud::{html, Markup};
use onboard_shared::masked::masked_fields;
use onboard_shared::queue::{JobState, JobStatus, QueueError};
use onboard_shared::secret::Secret;
use serde::Deserialize;
use std::convert::Infallible;

/// `GET /console/jobs/{id}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let store = state.producer.store();
    let status = match store.status(&id, false).await {
        Ok(s) => s,
        Err(QueueError::NotFound(_) | QueueError::BadId(_)) => {
            return pages::failed(StatusCode::NOT_FOUND, &format!("No job {id} (it may have ended and expired, or been purged)."))
        }
        Err(QueueError::Malformed { why, .. }) => {
            return pages::failed(StatusCode::UNPROCESSABLE_ENTITY, &format!("Job {id} cannot be read: {why}. It is in the dead-letter set, where it can be purged."))
        }
        Err(e) => return pages::unavailable(&e),
    };
    let history = match store.history(&id).await {
        Ok(h) => h,
        Err(e) => return pages::unavailable(&e),
    };
    let fields = match store.job_payload(&id).await {
        Ok(job) => masked_fields(&job),
        Err(QueueError::Malformed { why, .. }) => {
            vec![("payload", format!("cannot be read: {why}"))]
        }
        Err(e) => return pages::unavailable(&e),
    };
    let back = format!("/console/jobs/{id}");
    let body = html! {
        p { "State: " strong #job-state { (status.state.as_str()) }
            " · attempts " (status.attempts) "/" (status.max_attempts)
            @if status.uncertain { " · the last attempt's outcome is unknown (the next one reconciles)" } }
        @if let Some(e) = &status.last_error {
            p.last-error { "Last error: " code #job-error-code { (e.code) } " (" (e.class) ") " (e.message) }
        }
        (actions(&session, &status, &back))
        h2 { "Timeline" }
        ol #timeline {
            li { span.at { (pages::time(status.created_ms)) } " created" }
            @for h in &history {
                li {
                    span.at { (pages::time(h.at_ms)) } " " strong { (h.state.as_str()) }
                    @if let Some(a) = h.attempt { " attempt " (a) }
                    @if let Some(e) = &h.error { " · " code { (e.code) } " (" (e.class) ") " (e.message) }
                    @if let Some(r) = &h.reason { " · " (r) }
                }
            }
        }
        h2 { "Fields" }
        dl #fields {
            dt { "kind" } dd { (status.kind.as_str()) }
            @for (name, value) in &fields { dt { (name) } dd { (value) } }
            @if let Some(parent) = &status.depends_on { dt { "depends on" } dd { a href=(format!("/console/jobs/{parent}")) { (parent) } } }
            @if let Some(deadline) = status.deadline_ms { dt { "code deadline" } dd { (pages::time(deadline)) } }
            @if let Some(run_at) = status.run_at_ms { dt { "next run" } dd { (pages::time(run_at)) } }
        }
        @if let Some(result) = &status.result {
            h2 { "Result" }
            pre #result { (serde_json::to_string_pretty(result).unwrap_or_default()) }
        }
    };
    let events = format!("/console/events/jobs/{id}");
    layout(
        &format!("Job {id}"),
        Page::Job,
        &session,
        Some(&events),
        body,
    )
}

/// The buttons `status`'s state allows.
fn actions(session: &Session, status: &JobStatus, back: &str) -> Markup {
    let to = format!("/console/jobs/{}", status.id);
    let form = |action: &str, label: &str, extra: Markup| {
        action_form(session, &to, action, label, back, &[], extra)
    };
    html! {
        div.actions {
            @match status.state {
                JobState::Dead => {
                    (form("retry", "Retry", html! {}))
                    (form("purge", "Purge", html! {}))
                    @if let Some(e) = &status.last_error {
                        a #dead-group href=(format!("/console/dead?kind={}&code={}", status.kind, e.code)) { "Its dead-letter group (" (e.code) ")" }
                    }
                }
                JobState::AwaitingCode => {
                    (form("supply", "Supply code", code_input()))
                    (form("resend", "Resend code", html! {}))
                    (form("cancel", "Cancel", html! {}))
                }
                JobState::Expired => { (form("resend", "Send a new code", html! {})) }
                JobState::Queued | JobState::Scheduled | JobState::Waiting => { (form("cancel", "Cancel", html! {})) }
                _ => {}
            }
        }
    }
}

/// The verify-code field: six digits, never echoed back.
pub fn code_input() -> Markup {
    html! { input type="password" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="off" placeholder="6-digit code" required; }
}

/// What an action form sends.
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_to: String,
    action: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /console/jobs/{id}`: the action the form names.
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    if !session.csrf_ok(&f.csrf) {
        return pages::forbidden_csrf();
    }
    let store = state.producer.store();
    let outcome = match f.action.as_str() {
        "retry" => store
            .retry_dead(&id)
            .await
            .map(|s| format!("Job {id} retried: it is {s} now.")),
        "purge" => store
            .purge_dead(&id)
            .await
            .map(|_| format!("Job {id} purged.")),
        "cancel" => store
            .cancel_job(&id)
            .await
            .map(|_| format!("Job {id} cancelled.")),
        "resend" => store
            .resend_code(&id)
            .await
            .map(|_| format!("Job {id} will text a new code.")),
        "supply" => {
            let code = Secret::new(f.code.unwrap_or_default().trim());
            store
                .supply_code(&id, &code)
                .await
                .map(|_| format!("Code supplied to job {id}."))
        }
        other => {
            return pages::failed(
                StatusCode::NOT_FOUND,
                &format!("No action {other:?} for jobs."),
            )
        }
    };
    tracing::info!(token = %session.operator, job = %id, action = %f.action, ok = outcome.is_ok(), "console action");
    let message = match outcome {
        Ok(m) => m,
        Err(QueueError::BadCode) => "A code is six digits; nothing was changed.".to_string(),
        Err(
            e @ (QueueError::WrongState { .. } | QueueError::NotFound(_) | QueueError::BadId(_)),
        ) => format!("Not done: {e}"),
        Err(e) => return pages::unavailable(&e),
    };
    pages::done(&session, &f.return_to, &message)
        .await
        .into_response()
}

/// `GET /console/events/jobs/{id}`: the job's status, then each change until it ends.
pub async fn events(
    State(state): State<AppState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    let rx = job_updates(&state, &id)
        .await
        .map_err(IntoResponse::into_response)?;
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
