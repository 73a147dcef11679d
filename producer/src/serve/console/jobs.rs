//! The jobs list: one queue's jobs in one state, filtered by lane and batch, a page at a
//! time (`JobStore::list_jobs`, bounded reads); and finding one job by its id or by its
//! natural key (customer id, mail, e-mail) through the hashed idempotency index, so the
//! console keeps no plaintext index of personal data.

use super::super::AppState;
use super::pages::{self, layout, Page};
use super::session::Session;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::browse::{JobFilter, JobPage, Listed};
use onboard_shared::queue::ids::kind_of_id;
use onboard_shared::queue::{JobStore, Lane, QueueError};
use serde::Deserialize;

/// Jobs a page shows.
const PAGE_SIZE: usize = 50;

/// `GET /console/jobs` parameters (empty strings are "any").
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    kind: Option<String>,
    state: Option<String>,
    lane: Option<String>,
    batch: Option<String>,
    after: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The filter a query asks for, or what is wrong with it.
fn filter_of(q: &JobsQuery) -> Result<JobFilter, String> {
    let kind = match given(&q.kind) {
        Some(k) => k
            .parse::<JobKind>()
            .map_err(|_| format!("no job kind is called {k:?}"))?,
        None => JobKind::CreateCustomer,
    };
    let state = match given(&q.state) {
        Some(s) => Listed::parse(s).ok_or_else(|| {
            format!(
                "jobs in state {s:?} are not listed (ended jobs are found by id or natural key)"
            )
        })?,
        None => Listed::Queued,
    };
    let lane = given(&q.lane).map(str::parse::<Lane>).transpose()?;
    Ok(JobFilter {
        kind,
        state,
        lane,
        source: given(&q.batch).map(str::to_string),
    })
}

/// `GET /console/jobs`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<JobsQuery>,
) -> Response {
    let filter = match filter_of(&q) {
        Ok(f) => f,
        Err(why) => return list_page(&session, &q, None, Some(&why)),
    };
    match state
        .producer
        .store()
        .list_jobs(&filter, given(&q.after), PAGE_SIZE)
        .await
    {
        Ok(page) => list_page(&session, &q, Some((&filter, &page)), None),
        Err(e) => pages::unavailable(&e),
    }
}

/// The find form and the filter form.
fn forms(q: &JobsQuery, filter: Option<&JobFilter>) -> Markup {
    let kind = filter.map(|f| f.kind.as_str());
    let state = filter.map(|f| f.state.as_str());
    let lane = filter.and_then(|f| f.lane).map(Lane::as_str);
    html! {
        form #find method="get" action="/console/find" {
            label for="q" { "Find a job" }
            input #q type="search" name="q" placeholder="job id, customer id, mail or e-mail" required;
            select name="kind" {
                option value="" { "any kind" }
                @for k in JobKind::ALL { option value=(k.as_str()) { (k.as_str()) } }
            }
            button type="submit" { "Find" }
        }
        form #filters method="get" action="/console/jobs" {
            select name="kind" {
                @for k in JobKind::ALL { option value=(k.as_str()) selected[kind == Some(k.as_str())] { (k.as_str()) } }
            }
            select name="state" {
                @for s in Listed::ALL { option value=(s.as_str()) selected[state == Some(s.as_str())] { (s.as_str()) } }
            }
            select name="lane" {
                option value="" { "any lane" }
                @for l in Lane::ALL { option value=(l.as_str()) selected[lane == Some(l.as_str())] { (l.as_str()) } }
            }
            input type="text" name="batch" placeholder="batch id" value=[given(&q.batch)];
            button type="submit" { "Show" }
        }
    }
}

fn list_page(
    session: &Session,
    q: &JobsQuery,
    found: Option<(&JobFilter, &JobPage)>,
    error: Option<&str>,
) -> Response {
    let body = html! {
        @if let Some(e) = error { p.error { (e) } }
        (forms(q, found.map(|(f, _)| f)))
        @if let Some((filter, page)) = found {
            table #jobs {
                thead { tr { th { "job" } th { "state" } th { "attempts" } th { "lane" } th { "batch / source" } th { "created" } th { "last error" } } }
                tbody {
                    @for r in &page.rows {
                        tr data-job-id=(r.id) {
                            td { a.job-link href=(format!("/console/jobs/{}", r.id)) { (r.id) } }
                            td { (r.state.as_str()) }
                            td { (r.attempts) "/" (r.max_attempts) }
                            td { (r.lane.map_or("", Lane::as_str)) }
                            td { (r.source.as_deref().unwrap_or("")) }
                            td { (pages::time(r.created_ms)) }
                            td { (r.error.as_ref().map_or(String::new(), |e| e.code.clone())) }
                        }
                    }
                }
            }
            @if page.rows.is_empty() { p.hint { "No " (filter.kind.as_str()) " jobs " (filter.state.as_str()) " match." } }
            @if let Some(next) = &page.next {
                a #next-page href=(next_href(filter, next)) { "Next page" }
            }
        }
    };
    let mut response = layout("Jobs", Page::Jobs, session, None, body);
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

fn next_href(f: &JobFilter, after: &str) -> String {
    let mut url = url::Url::parse("http://console/console/jobs").expect("a constant URL parses");
    url.query_pairs_mut()
        .append_pair("kind", f.kind.as_str())
        .append_pair("state", f.state.as_str())
        .append_pair("lane", f.lane.map_or("", Lane::as_str))
        .append_pair("batch", f.source.as_deref().unwrap_or(""))
        .append_pair("after", after);
    format!("{}?{}", url.path(), url.query().unwrap_or(""))
}

/// `GET /console/find` parameters.
#[derive(Debug, Deserialize)]
pub struct FindQuery {
    q: String,
    kind: Option<String>,
}

/// `GET /console/find`: to the job's page, or the jobs page saying nothing was found.
pub async fn find(
    State(state): State<AppState>,
    session: Session,
    Query(f): Query<FindQuery>,
) -> Response {
    let wanted = f.q.trim();
    let kinds: Vec<JobKind> = match given(&f.kind).map(str::parse::<JobKind>) {
        Some(Ok(kind)) => vec![kind],
        Some(Err(_)) => {
            return list_page(
                &session,
                &JobsQuery::default(),
                None,
                Some("no job kind is called that"),
            )
        }
        None => JobKind::ALL.to_vec(),
    };
    match find_jobs(state.producer.store(), wanted, &kinds).await {
        Ok(found) if found.len() == 1 => {
            Redirect::to(&format!("/console/jobs/{}", found[0])).into_response()
        }
        Ok(found) if found.is_empty() => list_page(
            &session,
            &JobsQuery::default(),
            None,
            Some("No job found with that id or natural key."),
        ),
        Ok(found) => {
            let body = html! {
                (forms(&JobsQuery::default(), None))
                p { "Jobs of several kinds have that natural key:" }
                ul #found { @for id in &found { li { a.job-link href=(format!("/console/jobs/{id}")) { (id) } } } }
            };
            layout("Jobs", Page::Jobs, &session, None, body)
        }
        Err(e) => pages::unavailable(&e),
    }
}

/// The job with id `wanted` if it exists, else the jobs holding `<kind>:<natural key>`,
/// one per kind at most.
async fn find_jobs(
    store: &JobStore,
    wanted: &str,
    kinds: &[JobKind],
) -> Result<Vec<String>, QueueError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    if kind_of_id(wanted).is_some() {
        match store.status(wanted, false).await {
            Ok(_) | Err(QueueError::Malformed { .. }) => return Ok(vec![wanted.to_string()]),
            Err(QueueError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut found = Vec::new();
    for kind in kinds {
        let key = format!("{kind}:{wanted}");
        if let Some(id) = store.job_for_idempotency_key(*kind, &key).await? {
            found.push(id);
        }
    }
    Ok(found)
}
