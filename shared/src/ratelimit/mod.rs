//! Global rate limits, kept in Redis so that N worker processes together never exceed a
//! provider's limit (in-process limiters are per process and cannot promise that).
//!
//! One GCRA limiter per [`Limit`] (`gcra.lua`): each request reserves the next free slot,
//! `1 / rate` apart. A short wait is slept; a longer one comes back as
//! [`ProviderError::Throttled`] (by [`ThrottledBy::OurLimit`]) so the job is rescheduled
//! without using an attempt. When a provider itself says "slow down",
//! [`RedisGate::cool_down`] pauses that provider for every worker (`cool_down.lua`).

use crate::config::RateLimits;
use crate::providers::{Action, Limit, Provider, RequestGate};
use crate::{ProviderError, ThrottledBy};
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("gcra.lua")));
static COOL_DOWN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("cool_down.lua")));

/// Requests are spaced this much wider than the nominal rate, so that scheduling jitter
/// between a reserved slot and the request reaching the provider cannot put one request too
/// many into a 1-second window. 4 % keeps 96 % of the allowed rate busy.
const SAFETY_MARGIN: f64 = 1.04;

/// The Redis keys of one provider's limiter; all share the provider's hash tag, so the
/// limiter script touches one slot.
struct LimiterKeys;

impl LimiterKeys {
    fn slot(limit: Limit, provider: Provider) -> String {
        format!("onboard:{{rl:{provider}}}:{}", limit.key_name())
    }

    fn cooldown(provider: Provider) -> String {
        format!("onboard:{{rl:{provider}}}:cooldown")
    }
}

/// The Redis-side gate every provider request passes.
#[derive(Clone)]
pub struct RedisGate {
    conn: ConnectionManager,
    limits: RateLimits,
    max_inline_wait: Duration,
}

impl std::fmt::Debug for RedisGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisGate")
            .field("limits", &self.limits)
            .finish()
    }
}

impl RedisGate {
    /// A gate over `conn` with the configured limits; waits up to `max_inline_wait` are
    /// slept, longer ones are returned as throttling.
    pub fn new(conn: ConnectionManager, limits: RateLimits, max_inline_wait: Duration) -> Self {
        RedisGate {
            conn,
            limits,
            max_inline_wait,
        }
    }

    /// Pauses `provider` for every worker for `wait` (a provider answered "slow down").
    pub async fn cool_down(
        &self,
        provider: Provider,
        wait: Duration,
    ) -> Result<(), redis::RedisError> {
        let ms = wait.as_millis().max(1) as u64;
        let mut conn = self.conn.clone();
        let _: i64 = COOL_DOWN
            .key(LimiterKeys::cooldown(provider))
            .arg(ms)
            .invoke_async(&mut conn)
            .await?;
        metrics::counter!("onboard_provider_cooldowns_total", "provider" => provider.as_str())
            .increment(1);
        Ok(())
    }

    /// Waits for a slot of `action`'s limit, or says when to come back.
    pub async fn admit(&self, action: Action) -> Result<(), ProviderError> {
        let Some(rate) = action.limit.rate(&self.limits) else {
            return Ok(());
        };
        let interval_ms = (1000.0 / rate * SAFETY_MARGIN).ceil() as u64;
        let mut conn = self.conn.clone();
        let reply: Result<(i64, i64, i64), _> = GCRA
            .key(LimiterKeys::slot(action.limit, action.provider))
            .key(LimiterKeys::cooldown(action.provider))
            .arg(interval_ms)
            .arg(self.max_inline_wait.as_millis() as u64)
            .invoke_async(&mut conn)
            .await;
        let (admitted, wait_ms, cooling_down) = match reply {
            Ok(r) => r,
            Err(e) => {
                // Without the shared limiter we cannot promise the provider's limit: wait
                // and try later rather than send.
                tracing::warn!(error = %e, provider = %action.provider, "rate limiter unavailable");
                return Err(ProviderError::throttled(
                    ThrottledBy::LimiterUnavailable,
                    "RateLimiterUnavailable",
                    Duration::from_secs(1),
                ));
            }
        };
        let wait = Duration::from_millis(wait_ms.max(0) as u64);
        metrics::histogram!("onboard_rate_limit_wait_seconds", "provider" => action.provider.as_str(), "action" => action.name)
            .record(wait.as_secs_f64());
        if admitted == 1 {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            return Ok(());
        }
        // A job turned away for a slot comes back while the slots before its turn are
        // still reserved, so it finds one within the inline wait. Coming back exactly at
        // its turn would find the line just emptied: each such gap (a fetch's latency) is a
        // slot lost, which measured as 5 % of the limit.
        let retry_after = if cooling_down == 1 {
            wait
        } else {
            wait.saturating_sub(self.max_inline_wait / 2)
        };
        Err(ProviderError::throttled(
            ThrottledBy::OurLimit,
            "LocalRateLimit",
            retry_after,
        ))
    }
}

impl RequestGate for RedisGate {
    fn admit(&self, action: Action) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(RedisGate::admit(self, action))
    }

    fn cool_down(&self, provider: Provider, wait: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = RedisGate::cool_down(self, provider, wait).await {
                tracing::warn!(%provider, error = %e, "could not set the shared cool-down");
            }
        })
    }
}
