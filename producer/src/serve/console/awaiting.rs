//! Jobs awaiting a verify code, soonest deadline first, with the time each has left, and
//! the forms to supply a code or have a new one texted (they post to the job's actions).

use super::super::AppState;
use super::job::code_input;
use super::pages::{self, action_form, layout, Page};
use super::session::Session;
use axum::extract::State;
use axum::response::Response;
use maud::html;
use onboard_shared::jobs::JobKind;

/// Jobs the page lists at most.
const SHOWN: usize = 200;

/// `GET /console/awaiting`.
pub async fn page(State(state): State<AppState>, session: Session) -> Response {
    let mut rows = Vec::new();
    for kind in JobKind::ALL {
        match state.producer.store().awaiting_codes(kind, 0, SHOWN).await {
            Ok(r) => rows.extend(r),
            Err(e) => return pages::unavailable(&e),
        }
    }
    let now = pages::now_ms();
    let body = html! {
        @if rows.is_empty() { p.hint { "No job is awaiting a code." } }
        table #awaiting {
            thead { tr { th { "job" } th { "deadline" } th { "time left" } th {} } }
            tbody {
                @for (id, deadline) in &rows {
                    @let to = format!("/console/jobs/{id}");
                    tr data-job-id=(id) {
                        td { a.job-link href=(to) { (id) } }
                        td { (pages::time(*deadline)) }
                        td.time-left { @if *deadline > now { (pages::duration(deadline - now)) } @else { "expiring" } }
                        td {
                            (action_form(&session, &to, "supply", "Supply", "/console/awaiting", &[], code_input()))
                            (action_form(&session, &to, "resend", "Resend", "/console/awaiting", &[], html!{}))
                        }
                    }
                }
            }
        }
    };
    layout("Awaiting a code", Page::Awaiting, &session, None, body)
}
