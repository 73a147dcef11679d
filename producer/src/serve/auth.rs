//! Bearer tokens: who is calling, what they may do, and how fast.
//!
//! The configuration keeps each token's SHA-256; a presented token is hashed and compared
//! with every configured hash in constant time (`subtle`), so neither the comparison nor
//! which entry matched shows in the timing. Each token has its own request rate
//! (`governor`): over it, 429 with `Retry-After`.

use super::errors::{ApiError, ErrorCode};
use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use onboard_shared::config::{ApiConfig, ApiRole, ApiToken};
use onboard_shared::jobs::JobKind;
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The lowercase hex SHA-256 of a token, as the configuration keeps it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (32 bytes, hex) for `onboard-producer token`.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("onb_{}", hex::encode(bytes))
}

/// One configured token: its hash, its settings and its rate.
struct Entry {
    hash: [u8; 32],
    token: Arc<ApiToken>,
    limiter: DefaultDirectRateLimiter,
}

/// The configured tokens.
pub struct Tokens {
    entries: Vec<Entry>,
}

impl Tokens {
    /// The table from the configuration (checked by [`ApiConfig::check`] first).
    pub fn new(cfg: &ApiConfig) -> Result<Tokens, String> {
        cfg.check()?;
        let entries = cfg
            .tokens
            .iter()
            .map(|t| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(t.sha256.to_ascii_lowercase(), &mut hash)
                    .map_err(|e| format!("api.tokens: {}: sha256: {e}", t.name))?;
                let rate = NonZeroU32::new(t.rate_per_sec.unwrap_or(cfg.rate_per_sec))
                    .unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(t.burst.unwrap_or(cfg.burst)).unwrap_or(rate);
                Ok(Entry {
                    hash,
                    token: Arc::new(t.clone()),
                    limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Tokens { entries })
    }

    /// The entry whose hash matches `presented`'s, comparing against every entry.
    fn find(&self, presented: &str) -> Option<&Entry> {
        let digest = Sha256::digest(presented.as_bytes());
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(digest.as_slice())) {
                found = Some(entry);
            }
        }
        found
    }
}

/// Why a console login was refused.
#[derive(Debug)]
pub enum LoginRefused {
    /// No configured token has that hash.
    Unknown,
    /// The token has the app role (named).
    NotOperator(String),
    /// Over the token's request rate: seconds to wait.
    RateLimited(u64),
}

impl Tokens {
    /// The operator token `presented` is, within its rate (the console's login).
    pub fn login(&self, presented: &str) -> Result<Arc<ApiToken>, LoginRefused> {
        let entry = self.find(presented).ok_or(LoginRefused::Unknown)?;
        entry.take().map_err(LoginRefused::RateLimited)?;
        if entry.token.role != ApiRole::Operator {
            return Err(LoginRefused::NotOperator(entry.token.name.clone()));
        }
        Ok(entry.token.clone())
    }

    /// Whether a token named `name` is configured with the operator role (a console
    /// session lasts only as long as its token does).
    pub fn is_operator(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.token.name == name && e.token.role == ApiRole::Operator)
    }
}

impl Entry {
    /// Takes one request from the token's rate; `Err(seconds)` to wait when over it.
    fn take(&self) -> Result<(), u64> {
        self.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// An authenticated caller (any role), within its rate.
pub struct Caller(pub Arc<ApiToken>);

impl Caller {
    /// 403 unless the token may enqueue `kind`.
    pub fn may_enqueue(&self, kind: JobKind) -> Result<(), ApiError> {
        if self.0.kinds.contains(&kind) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("token {} may not enqueue {kind} jobs", self.0.name),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "an Authorization: Bearer <token> header is required",
                )
            })?;
        let entry = state.tokens.find(presented).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "this bearer token is not configured",
            )
        })?;
        entry.take().map_err(ApiError::rate_limited)?;
        Ok(Caller(entry.token.clone()))
    }
}

/// An authenticated caller with the `operator` role (what it does is logged with its name).
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(token) = Caller::from_request_parts(parts, state).await?;
        if token.role != ApiRole::Operator {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("token {} has the app role; this needs operator", token.name),
            ));
        }
        tracing::info!(token = %token.name, method = %parts.method, path = %parts.uri.path(), "operator request");
        Ok(Operator)
    }
}
