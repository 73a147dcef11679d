//! Batches (backfill runs and API uploads), newest first, with their progress and an ETA,
//! and pausing, resuming or cancelling one.

use super::super::AppState;
use super::pages::{self, action_form, layout, Page};
use super::session::Session;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::html;
use onboard_shared::queue::{BatchState, BatchStatus, QueueError};
use serde::Deserialize;

/// Batches the page lists (the newest).
const SHOWN: usize = 100;

/// How long the rest of `b` should take at the rate it has gone since it began.
fn eta(b: &BatchStatus) -> String {
    let ended = b.succeeded + b.dead + b.expired + b.cancelled;
    let left = b.enqueued.saturating_sub(ended);
    if left == 0 {
        return "done".into();
    }
    if b.state != BatchState::Active {
        return b.state.as_str().into();
    }
    let elapsed_ms = pages::now_ms().saturating_sub(b.created_ms);
    if ended == 0 || elapsed_ms == 0 {
        return "-".into();
    }
    pages::duration(left.saturating_mul(elapsed_ms) / ended)
}

/// `GET /console/batches`.
pub async fn page(State(state): State<AppState>, session: Session) -> Response {
    let batches = match state.producer.store().batches(SHOWN).await {
        Ok(b) => b,
        Err(e) => return pages::unavailable(&e),
    };
    let body = html! {
        @if batches.is_empty() { p.hint { "No batches yet." } }
        table #batches {
            thead { tr { th { "batch" } th { "label" } th { "created" } th { "state" } th { "progress" } th { "queued" } th { "in flight" } th { "dead" } th { "ETA" } th {} } }
            tbody {
                @for b in &batches {
                    @let ended = b.succeeded + b.dead + b.expired + b.cancelled;
                    @let to = format!("/console/batches/{}", b.id);
                    tr data-batch-id=(b.id) {
                        td { a href=(format!("/console/jobs?kind=create-customer&state=queued&batch={}", b.id)) { (b.id) } }
                        td { (b.label) }
                        td { (pages::time(b.created_ms)) }
                        td.state { (b.state.as_str()) }
                        td.progress {
                            progress max=(b.enqueued.max(1)) value=(ended) {}
                            " " (ended) "/" (b.enqueued)
                        }
                        td { (b.queued) }
                        td { (b.in_flight) }
                        td { (b.dead) }
                        td.eta { (eta(b)) }
                        td {
                            @match b.state {
                                BatchState::Active => {
                                    (action_form(&session, &to, "pause", "Pause", "/console/batches", &[], html!{}))
                                    (action_form(&session, &to, "cancel", "Cancel", "/console/batches", &[], html!{}))
                                }
                                BatchState::Paused => {
                                    (action_form(&session, &to, "resume", "Resume", "/console/batches", &[], html!{}))
                                    (action_form(&session, &to, "cancel", "Cancel", "/console/batches", &[], html!{}))
                                }
                                BatchState::Cancelled => {}
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Batches", Page::Batches, &session, None, body)
}

/// A batch action's form.
#[derive(Deserialize)]
pub struct BatchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_to: String,
    action: String,
}

/// `POST /console/batches/{id}`.
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(f): Form<BatchForm>,
) -> Response {
    if !session.csrf_ok(&f.csrf) {
        return pages::forbidden_csrf();
    }
    let store = state.producer.store();
    let done = match f.action.as_str() {
        "pause" => store
            .set_batch_state(&id, BatchState::Paused)
            .await
            .map(|_| format!("Batch {id} paused.")),
        "resume" => store
            .set_batch_state(&id, BatchState::Active)
            .await
            .map(|_| format!("Batch {id} resumed.")),
        "cancel" => store.cancel_batch(&id).await.map(|n| {
            format!("Batch {id} cancelled: {n} jobs that had not started were cancelled.")
        }),
        _ => {
            return pages::failed(
                StatusCode::NOT_FOUND,
                "The action is pause, resume or cancel.",
            )
        }
    };
    tracing::info!(token = %session.operator, batch = %id, action = %f.action, ok = done.is_ok(), "console batch action");
    let message = match done {
        Ok(m) => m,
        Err(e @ QueueError::NotFound(_)) => format!("Not done: {e}"),
        Err(e) => return pages::unavailable(&e),
    };
    pages::done(&session, &f.return_to, &message).await
}
