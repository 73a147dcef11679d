//! The overview: per job kind, its jobs per state, attempts started and jobs finished per
//! second, the age of its oldest due job, the share of its provider's limit in use, and
//! whether it is paused (with the button that pauses or resumes it in every worker). The
//! numbers move without a reload: `console.js` follows `/console/events/overview`, which
//! samples the counters every second and sends the rates between two samples.

use super::super::AppState;
use super::pages::{self, action_form, layout, Page};
use super::session::Session;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures::Stream;
use maud::html;
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{JobStore, QueueError, QueueStats};
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// How often the live overview samples the counters.
const TICK: Duration = Duration::from_secs(1);

/// One kind's row, as the page and the stream show it (`td[data-field]` names the fields).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    kind: JobKind,
    waiting: u64,
    queued: u64,
    running: u64,
    scheduled: u64,
    awaiting: u64,
    dead: u64,
    started_per_sec: String,
    finished_per_sec: String,
    oldest_ready_age: String,
    limit_share: String,
    paused: &'static str,
}

/// The counters rates come from, at one instant.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    started: u64,
    finished: u64,
    slots: u64,
}

/// Reads every kind's stats and counters; with `before`, the rates since then.
async fn rows(
    store: &JobStore,
    before: &HashMap<JobKind, Sample>,
) -> Result<(Vec<Row>, HashMap<JobKind, Sample>), QueueError> {
    let mut rows = Vec::new();
    let mut now = HashMap::new();
    for kind in JobKind::ALL {
        let s: QueueStats = store.queue_stats(kind).await?;
        let limit = kind.action().limit;
        let sample = Sample {
            at: Instant::now(),
            started: s.started_total,
            finished: s.succeeded_total + s.dead + s.expired_total + s.cancelled_total,
            slots: store.slots_used(kind, limit).await?,
        };
        let rate = |f: fn(&Sample) -> u64| -> Option<f64> {
            let b = before.get(&kind)?;
            let secs = sample.at.duration_since(b.at).as_secs_f64();
            (secs > 0.0).then(|| f(&sample).saturating_sub(f(b)) as f64 / secs)
        };
        let shown = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.1}"));
        let share = match (rate(|s| s.slots), limit.rate(&store.config().limits)) {
            (Some(used), Some(allowed)) => format!("{:.0} %", 100.0 * used / allowed),
            (_, None) => "no limit".to_string(),
            (None, _) => "-".to_string(),
        };
        rows.push(Row {
            kind,
            waiting: s.waiting,
            queued: s.queued,
            running: s.running,
            scheduled: s.scheduled_or_retrying,
            awaiting: s.awaiting_code,
            dead: s.dead,
            started_per_sec: shown(rate(|s| s.started)),
            finished_per_sec: shown(rate(|s| s.finished)),
            oldest_ready_age: pages::duration(s.oldest_ready_age_ms),
            limit_share: share,
            paused: if s.paused { "paused" } else { "running" },
        });
        now.insert(kind, sample);
    }
    Ok((rows, now))
}

/// `GET /console`.
pub async fn page(State(state): State<AppState>, session: Session) -> Response {
    let rows = match rows(state.producer.store(), &HashMap::new()).await {
        Ok((rows, _)) => rows,
        Err(e) => return pages::unavailable(&e),
    };
    let body = html! {
        table #overview {
            thead { tr {
                th { "kind" } th { "waiting" } th { "queued" } th { "running" } th { "scheduled" }
                th { "awaiting a code" } th { "dead" } th { "started/s" } th { "finished/s" }
                th { "oldest due" } th { "limit in use" } th { "claims" } th {}
            } }
            tbody {
                @for r in &rows {
                    @let kind = r.kind.as_str();
                    @let jobs = |state: &str| format!("/console/jobs?kind={kind}&state={state}");
                    tr data-kind=(kind) {
                        td { (kind) }
                        td data-field="waiting" { a href=(jobs("waiting")) { (r.waiting) } }
                        td data-field="queued" { a href=(jobs("queued")) { (r.queued) } }
                        td data-field="running" { a href=(jobs("running")) { (r.running) } }
                        td data-field="scheduled" { a href=(jobs("scheduled")) { (r.scheduled) } }
                        td data-field="awaiting" { a href=(jobs("awaiting_code")) { (r.awaiting) } }
                        td data-field="dead" { a href=(format!("/console/dead?kind={kind}")) { (r.dead) } }
                        td data-field="started_per_sec" { (r.started_per_sec) }
                        td data-field="finished_per_sec" { (r.finished_per_sec) }
                        td data-field="oldest_ready_age" { (r.oldest_ready_age) }
                        td data-field="limit_share" { (r.limit_share) }
                        td data-field="paused" { (r.paused) }
                        td {
                            @let to = format!("/console/queues/{kind}");
                            @if r.paused == "paused" {
                                (action_form(&session, &to, "resume", "Resume", "/console", &[], html!{}))
                            } @else {
                                (action_form(&session, &to, "pause", "Pause", "/console", &[], html!{}))
                            }
                        }
                    }
                }
            }
        }
        p.hint { "Rates are measured between two samples a second apart; they appear after the first." }
    };
    layout(
        "Overview",
        Page::Overview,
        &session,
        Some("/console/events/overview"),
        body,
    )
}

/// `GET /console/events/overview`: the rows every second, as `overview` events.
pub async fn events(
    State(state): State<AppState>,
    _session: Session,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let store = state.producer.store().clone();
    let stream = futures::stream::unfold((true, HashMap::new()), move |(first, before)| {
        let store = store.clone();
        async move {
            if !first {
                tokio::time::sleep(TICK).await;
            }
            let (event, now) = match rows(&store, &before).await {
                Ok((rows, now)) => (
                    Event::default().event("overview").json_data(&rows).ok()?,
                    now,
                ),
                Err(e) => (Event::default().event("error").data(e.to_string()), before),
            };
            Some((Ok(event), (false, now)))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
