//! Dead letters grouped by error code, per kind, with counts (`JobStore::dead_groups`, from
//! the index the scripts keep beside the dead-letter set), and retrying or purging a whole
//! group at once.

use super::super::AppState;
use super::pages::{self, action_form, layout, Page};
use super::session::Session;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::html;
use onboard_shared::jobs::JobKind;
use serde::Deserialize;

/// Jobs one click retries or purges at most (a bigger group takes more clicks; each says
/// how many remain).
const PER_CLICK: usize = 10_000;

/// `GET /console/dead` parameters: a group to point out.
#[derive(Debug, Default, Deserialize)]
pub struct DeadQuery {
    kind: Option<String>,
    code: Option<String>,
}

/// `GET /console/dead`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<DeadQuery>,
) -> Response {
    let store = state.producer.store();
    let mut groups = Vec::new();
    let mut unindexed = Vec::new();
    for kind in JobKind::ALL {
        match store.dead_groups(kind).await {
            Ok((g, rest)) => {
                groups.extend(g);
                if rest > 0 {
                    unindexed.push((kind, rest));
                }
            }
            Err(e) => return pages::unavailable(&e),
        }
    }
    let back = match (&q.kind, &q.code) {
        (Some(k), Some(c)) => format!("/console/dead?kind={}&code={}", urlencode(k), urlencode(c)),
        _ => "/console/dead".to_string(),
    };
    let body = html! {
        @if groups.is_empty() && unindexed.is_empty() { p.hint { "No dead letters." } }
        table #dead-groups {
            thead { tr { th { "kind" } th { "error code" } th { "jobs" } th {} } }
            tbody {
                @for g in &groups {
                    @let picked = q.kind.as_deref() == Some(g.kind.as_str()) && q.code.as_deref() == Some(g.code.as_str());
                    tr data-kind=(g.kind.as_str()) data-code=(g.code) class=[picked.then_some("picked")] {
                        td { (g.kind.as_str()) }
                        td { code { (g.code) } }
                        td.count { (g.count) }
                        td {
                            @let fields = [("kind", g.kind.as_str()), ("code", g.code.as_str())];
                            (action_form(&session, "/console/dead", "retry-group", "Retry all", &back, &fields, html!{}))
                            (action_form(&session, "/console/dead", "purge-group", "Purge all", &back, &fields, html!{}))
                            a href=(format!("/console/jobs?kind={}&state=dead", g.kind)) { "list" }
                        }
                    }
                }
            }
        }
        @for (kind, n) in &unindexed {
            p.hint { (n) " dead " (kind.as_str()) " jobs died before groups were kept: "
                a href=(format!("/console/jobs?kind={kind}&state=dead")) { "list them" } " to act on each." }
        }
    };
    layout("Dead letters", Page::Dead, &session, None, body)
}

/// A group action's form.
#[derive(Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_to: String,
    action: String,
    kind: String,
    code: String,
}

/// `POST /console/dead`: retry or purge a group.
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    Form(f): Form<GroupForm>,
) -> Response {
    if !session.csrf_ok(&f.csrf) {
        return pages::forbidden_csrf();
    }
    let Ok(kind) = f.kind.parse::<JobKind>() else {
        return pages::failed(StatusCode::NOT_FOUND, "No job kind of that name.");
    };
    let purge = match f.action.as_str() {
        "retry-group" => false,
        "purge-group" => true,
        _ => {
            return pages::failed(
                StatusCode::NOT_FOUND,
                "The action is retry-group or purge-group.",
            )
        }
    };
    let outcome = match state
        .producer
        .store()
        .act_on_dead_group(kind, &f.code, purge, PER_CLICK)
        .await
    {
        Ok(o) => o,
        Err(e) => return pages::unavailable(&e),
    };
    tracing::info!(token = %session.operator, %kind, code = %f.code, purge, done = outcome.done, "console dead-letter group action");
    let verb = if purge { "purged" } else { "retried" };
    let mut message = format!(
        "{} {} dead {kind} jobs with {}.",
        outcome.done, verb, f.code
    );
    if outcome.refused > 0 {
        message.push_str(&format!(
            " {} could not be (undecodable jobs can only be purged).",
            outcome.refused
        ));
    }
    if outcome.remaining > 0 {
        message.push_str(&format!(" {} remain in the group.", outcome.remaining));
    }
    pages::done(&session, &f.return_to, &message).await
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
