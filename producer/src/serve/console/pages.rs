//! What every console page shares: the layout (navigation, flash message, logout form), the
//! action form every button is, the error page, and how times and ages read. Pages are maud
//! templates: compiled with the server, every value HTML-escaped.

use super::session::Session;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use onboard_shared::queue::QueueError;
use std::time::{SystemTime, UNIX_EPOCH};

/// The pages, as `<main data-page>` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Per kind counts and rates.
    Overview,
    /// A list of jobs.
    Jobs,
    /// One job.
    Job,
    /// Dead letters by error code.
    Dead,
    /// Batches.
    Batches,
    /// Jobs awaiting a code.
    Awaiting,
}

impl Page {
    fn name(self) -> &'static str {
        match self {
            Page::Overview => "overview",
            Page::Jobs => "jobs",
            Page::Job => "job",
            Page::Dead => "dead",
            Page::Batches => "batches",
            Page::Awaiting => "awaiting",
        }
    }
}

/// The navigation: path, label, page.
const NAV: [(&str, &str, Page); 5] = [
    ("/console", "Overview", Page::Overview),
    ("/console/jobs", "Jobs", Page::Jobs),
    ("/console/dead", "Dead letters", Page::Dead),
    ("/console/batches", "Batches", Page::Batches),
    ("/console/awaiting", "Awaiting a code", Page::Awaiting),
];

/// The document around a page's body. `events` is the SSE stream `console.js` follows to
/// update the page without a reload.
pub fn layout(
    title: &str,
    page: Page,
    session: &Session,
    events: Option<&str>,
    body: Markup,
) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · onboard console" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                header {
                    nav {
                        strong { "onboard" }
                        @for (href, label, p) in NAV {
                            a href=(href) class=[(p == page).then_some("current")] { (label) }
                        }
                    }
                    form #logout method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        span.who { (session.operator) }
                        button type="submit" { "Log out" }
                    }
                }
                main data-page=(page.name()) data-events=[events] {
                    @if let Some(flash) = &session.flash { p.flash { (flash) } }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(doc.into_string()).into_response()
}

/// A page without a session (the login page, errors before login).
pub fn bare(title: &str, status: StatusCode, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · onboard console" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body.bare { main { h1 { (title) } (body) } }
        }
    };
    (status, Html(doc.into_string())).into_response()
}

/// A button that POSTs `action` to `to` with the session's CSRF value, coming back to
/// `back`. `fields` are hidden fields; `extra` goes inside the form before the button.
pub fn action_form(
    session: &Session,
    to: &str,
    action: &str,
    label: &str,
    back: &str,
    fields: &[(&str, &str)],
    extra: Markup,
) -> Markup {
    html! {
        form.action method="post" action=(to) data-action=(action) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="return_to" value=(back);
            input type="hidden" name="action" value=(action);
            @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
            (extra)
            button type="submit" { (label) }
        }
    }
}

/// Where an action goes back to: a console path, never another site.
pub fn back_to(return_to: &str) -> &str {
    let safe = return_to.starts_with("/console")
        && !return_to.contains("//")
        && !return_to.contains('\\')
        && return_to.chars().all(|c| c.is_ascii_graphic());
    if safe {
        return_to
    } else {
        "/console"
    }
}

/// After an action: the message for the next page, and a 303 back.
pub async fn done(session: &Session, return_to: &str, message: &str) -> Response {
    if let Err(e) = session.set_flash(message).await {
        return unavailable(&e);
    }
    Redirect::to(back_to(return_to)).into_response()
}

/// A form whose CSRF value is not the session's: refused, nothing done.
pub fn forbidden_csrf() -> Response {
    bare(
        "Refused",
        StatusCode::FORBIDDEN,
        html! { p.error { "This form is stale or was not sent by the console (CSRF check failed); nothing was done. Go back, reload and try again." } },
    )
}

/// Redis could not answer.
pub fn unavailable(e: &QueueError) -> Response {
    tracing::warn!(error = %e, "console: the queue did not answer");
    bare(
        "Queue unavailable",
        StatusCode::SERVICE_UNAVAILABLE,
        html! { p.error { "The queue did not answer: " (e) } },
    )
}

/// A page with an error message for something that went wrong in a request.
pub fn failed(status: StatusCode, message: &str) -> Response {
    bare(
        "Error",
        status,
        html! { p.error { (message) } a href="/console" { "Back to the overview" } },
    )
}

/// Unix ms now (this server's clock, for ages shown to people only).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A Unix ms time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn time(ms: u64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms as i64).filter(|_| ms > 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => "-".into(),
    }
}

/// A duration in ms as people read it: `850 ms`, `12 s`, `4 min 5 s`, `3 h 2 min`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{} s", ms / 1000),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_as_people_write_them() {
        assert_eq!(time(0), "-");
        assert_eq!(time(1_796_256_000_000), "2026-12-03 00:00:00 UTC");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(245_000), "4 min 5 s");
    }

    #[test]
    fn actions_only_go_back_to_console_pages() {
        assert_eq!(back_to("/console/dead?kind=x"), "/console/dead?kind=x");
        assert_eq!(back_to("https://evil.example/"), "/console");
        assert_eq!(back_to("/console//evil.example"), "/console");
        assert_eq!(back_to("/v1/jobs"), "/console");
    }
}
