//! `GET /v1/jobs/{id}/events`: a job's state changes as server-sent events, from its
//! status now until it ends (succeeded, dead, expired, cancelled or purged). The first
//! event (`status`) is the job's current status; each later one is an entry of the events
//! stream about the job (named by the state it entered), read with the shared
//! [`EventFollower`]. Subscribing comes before reading the status, so no change between
//! the two is missed; events the status already shows (older than it, or its own change)
//! are left out, so each change is told once.

use super::auth::Caller;
use super::errors::{ApiError, ErrorBody, ErrorCode};
use super::AppState;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use onboard_producer::{EventFollower, EventState};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one read of the stream blocks before looking whether the client left.
const BLOCK: Duration = Duration::from_secs(1);

/// Follow one job to its end.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, content_type = "text/event-stream", body = String,
               description = "`status` first, then one event per state change until the job ends"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn follow(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    state.owners.check(&caller, &id).await?;
    let rx = job_updates(&state, &id).await?;
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Job `id`'s status now, then each change of it until it ends, as SSE events (the API's
/// `follow` and the console's job page both send these).
pub async fn job_updates(state: &AppState, id: &str) -> Result<mpsc::Receiver<SseEvent>, ApiError> {
    let id = id.to_string();
    let store = state.producer.store().clone();
    let mut follower = EventFollower::from_now(&store).await?;
    let status = state.producer.status(&id, false).await?;
    let ended = status.state.is_final();
    let (since_ms, since_state) = (status.updated_ms, status.state);
    let first = json_event("status", &status)?;
    let (tx, rx) = mpsc::channel::<SseEvent>(16);
    tokio::spawn(async move {
        if tx.send(first).await.is_err() || ended {
            return;
        }
        loop {
            let batch = match follower.next_batch(BLOCK).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, job = %id, "events follow failed");
                    let _ = tx
                        .send(SseEvent::default().event("error").data(e.to_string()))
                        .await;
                    return;
                }
            };
            if tx.is_closed() {
                return;
            }
            let news = batch.into_iter().filter(|e| {
                let shown = e.at_ms < since_ms
                    || (e.at_ms == since_ms && e.state.job_state() == Some(since_state));
                e.job_id == id && !shown
            });
            for event in news {
                let last = match event.state {
                    EventState::Purged => true,
                    EventState::Entered(s) => s.is_final(),
                };
                let Ok(sse) = json_event(event.state.as_str(), &event) else {
                    continue;
                };
                if tx.send(sse).await.is_err() || last {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Result<SseEvent, ApiError> {
    SseEvent::default()
        .event(name)
        .json_data(value)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}
