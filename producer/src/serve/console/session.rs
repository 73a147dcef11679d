//! Console sessions. An operator logs in once with an operator token; the server keeps the
//! session in Redis (`onboard:{console}:session:<SHA-256 of its id>`, for `SESSION_SECS`)
//! with the token's name, the session's CSRF value and a one-shot flash message. The browser
//! holds only the random session id, in an HttpOnly, SameSite=Strict cookie scoped to
//! `/console`, so no script can read it and no other site can send it. Every request checks
//! that the token is still configured with the operator role: removing a token from the
//! configuration ends its sessions.

use super::super::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use onboard_shared::queue::QueueError;
use onboard_shared::redis_link::RedisConnection;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "onboard_console";
/// How long a session lasts from its login.
const SESSION_SECS: u64 = 8 * 3600;

/// 32 random bytes, hex: session ids, CSRF values and login-link codes.
pub(super) fn random_hex() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `value` has the shape [`random_hex`] makes (anything else is refused unread).
pub(super) fn is_random_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Redis key under `onboard:{console}:<space>:` of secret `value`: its hash, so a key
/// listing shows nothing usable.
pub(super) fn hashed_key(space: &str, value: &str) -> String {
    format!(
        "onboard:{{console}}:{space}:{}",
        hex::encode(Sha256::digest(value.as_bytes()))
    )
}

/// The Redis key of session `sid`.
fn key_of(sid: &str) -> String {
    hashed_key("session", sid)
}

/// A logged-in operator's session.
#[derive(Clone)]
pub struct Session {
    sid: String,
    /// The name of the token it logged in with.
    pub operator: String,
    /// The value every action form carries back.
    pub csrf: String,
    /// A message left by the last action, shown once.
    pub flash: Option<String>,
    conn: RedisConnection,
}

impl Session {
    /// Starts a session for token `operator`; returns its cookie.
    pub async fn start(
        conn: &RedisConnection,
        operator: &str,
    ) -> Result<Cookie<'static>, QueueError> {
        let sid = random_hex();
        let mut conn = conn.clone();
        let key = key_of(&sid);
        let _: () = redis::pipe()
            .hset_multiple(&key, &[("operator", operator), ("csrf", &random_hex())])
            .expire(&key, SESSION_SECS as i64)
            .query_async(&mut conn)
            .await?;
        Ok(Cookie::build((COOKIE, sid))
            .path("/console")
            .http_only(true)
            .same_site(SameSite::Strict)
            .build())
    }

    /// Ends this session; returns the cookie that clears it.
    pub async fn end(self) -> Result<Cookie<'static>, QueueError> {
        let mut conn = self.conn.clone();
        let _: () = conn.del(key_of(&self.sid)).await?;
        Ok(Cookie::build((COOKIE, "")).path("/console").build())
    }

    /// Whether `presented` is this session's CSRF value (compared in constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Leaves `message` for the next page this session shows.
    pub async fn set_flash(&self, message: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: () = conn.hset(key_of(&self.sid), "flash", message).await?;
        Ok(())
    }
}

/// Why a request has no session: the login page answers it.
pub struct NoSession;

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        Redirect::to("/console/login").into_response()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(sid) = jar.get(COOKIE).map(|c| c.value().to_string()) else {
            return Err(NoSession.into_response());
        };
        if !is_random_hex(&sid) {
            return Err(NoSession.into_response());
        }
        let mut conn = state.producer.store().connection();
        let key = key_of(&sid);
        let (operator, csrf, flash): (Option<String>, Option<String>, Option<String>) = conn
            .hmget(&key, &["operator", "csrf", "flash"])
            .await
            .map_err(|e| super::pages::unavailable(&QueueError::from(e)))?;
        let (Some(operator), Some(csrf)) = (operator, csrf) else {
            return Err(NoSession.into_response());
        };
        if !state.tokens.is_operator(&operator) {
            let _: Result<(), _> = conn.del(&key).await;
            return Err(NoSession.into_response());
        }
        if flash.is_some() {
            let _: Result<(), _> = conn.hdel(&key, "flash").await;
        }
        Ok(Session {
            sid,
            operator,
            csrf,
            flash,
            conn,
        })
    }
}
