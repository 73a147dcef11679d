//! Logging in and out. The login form takes an operator token (the same tokens as the HTTP
//! API, kept hashed in `[[api.tokens]]`); an app token or an unknown one is refused, and
//! nothing about which tokens exist shows in the answer's timing (`Tokens::login`). A
//! one-time link (`?once=`, [`login_link`](super::login_link)) logs in without the form.

use super::super::auth::LoginRefused;
use super::super::AppState;
use super::login_link;
use super::pages::{self, bare};
use super::session::Session;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::CookieJar;
use maud::{html, Markup};
use serde::Deserialize;

/// The login form.
fn form(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p.error { (e) } }
        form #login method="post" action="/console/login" {
            label for="token" { "Operator token" }
            input #token type="password" name="token" autocomplete="off" required autofocus;
            button type="submit" { "Log in" }
        }
        p.hint { "Tokens are configured in " code { "[[api.tokens]]" } " with the operator role; "
            code { "onboard-producer token" } " makes one." }
    }
}

/// The login page's query: a one-time link's code.
#[derive(Deserialize)]
pub struct LoginQuery {
    once: Option<String>,
}

/// `GET /console/login`: the form, or a one-time link redeemed for a session.
pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    let Some(code) = query.once else {
        return bare("Log in", StatusCode::OK, form(None));
    };
    let conn = state.producer.store().connection();
    let operator = match login_link::redeem(&conn, code.trim()).await {
        Ok(operator) => operator,
        Err(e) => return pages::unavailable(&e),
    };
    match operator {
        Some(name) if state.tokens.is_operator(&name) => start(&state, jar, &name).await,
        _ => {
            tracing::info!("console login link refused");
            let why = "This login link was used already, has expired or its token is gone; log in with an operator token.";
            bare("Log in", StatusCode::UNAUTHORIZED, form(Some(why)))
        }
    }
}

/// A session for operator token `name`, and the way to the overview.
async fn start(state: &AppState, jar: CookieJar, name: &str) -> Response {
    match Session::start(&state.producer.store().connection(), name).await {
        Ok(cookie) => {
            tracing::info!(token = %name, "console login");
            (jar.add(cookie), Redirect::to("/console")).into_response()
        }
        Err(e) => pages::unavailable(&e),
    }
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /console/login`: a session for an operator token.
pub async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> Response {
    let token = match state.tokens.login(f.token.trim()) {
        Ok(token) => token,
        Err(refused) => {
            let (status, why) = match refused {
                LoginRefused::Unknown => (
                    StatusCode::UNAUTHORIZED,
                    "This token is not configured.".to_string(),
                ),
                LoginRefused::NotOperator(name) => (
                    StatusCode::FORBIDDEN,
                    format!("Token {name} has the app role; the console needs an operator token."),
                ),
                LoginRefused::RateLimited(secs) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many attempts with this token; try again in {secs} s."),
                ),
            };
            tracing::info!(status = status.as_u16(), "console login refused");
            return bare("Log in", status, form(Some(&why)));
        }
    };
    start(&state, jar, &token.name).await
}

/// The logout form's fields.
#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`.
pub async fn logout(session: Session, jar: CookieJar, Form(f): Form<LogoutForm>) -> Response {
    if !session.csrf_ok(&f.csrf) {
        return pages::forbidden_csrf();
    }
    match session.end().await {
        Ok(cleared) => (jar.add(cleared), Redirect::to("/console/login")).into_response(),
        Err(e) => pages::unavailable(&e),
    }
}
