//! Global rate limits, kept in Redis so that N worker processes together never exceed a
//! provider's limit (in-process limiters are per process and cannot promise that).
//!
//! One GCRA limiter per provider action (`gcra.lua`): each request reserves the next free
//! slot, `1 / rate` apart. A short wait is slept; a longer one comes back as
//! [`ProviderError::Throttled`] so the job is rescheduled without using an attempt. When a
//! provider itself says "slow down", [`RedisGate::cool_down`] pauses that provider for every
//! worker for the suggested time.

use crate::config::RateLimits;
use crate::providers::RequestGate;
use crate::ProviderError;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("gcra.lua")));

/// Requests are spaced this much wider than the nominal rate, so that scheduling jitter
/// between a reserved slot and the request reaching the provider cannot put one request too
/// many into a 1-second window. 4 % keeps 96 % of the allowed rate busy.
const SAFETY_MARGIN: f64 = 1.04;

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

fn key(provider: &str, action: &str) -> String {
    format!("onboard:{{rl:{provider}}}:{action}")
}

fn cooldown_key(provider: &str) -> String {
    format!("onboard:{{rl:{provider}}}:cooldown")
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

    /// Requests per second allowed for `provider`/`action`; `None` means unlimited.
    pub fn rate(&self, provider: &str, action: &str) -> Option<f64> {
        let rate = match (provider, action) {
            ("iot", _) => self.limits.iot,
            ("tencentcloud", "CreateAccount") => self.limits.create_account,
            ("tencentcloud", "SendVerifyCode") => self.limits.send_verify_code,
            ("tencentcloud", "GetCountryCodes") => self.limits.get_country_codes,
            ("polyv", _) => self.limits.polyv,
            _ => return None,
        };
        (rate > 0.0).then_some(rate)
    }

    /// The limiter key of an action. The whole-provider limits (iot, polyv) share one key.
    fn limiter_key(provider: &str, action: &str) -> String {
        match provider {
            "iot" | "polyv" => key(provider, "all"),
            _ => key(provider, action),
        }
    }

    /// Pauses `provider` for every worker for `wait` (a provider answered "slow down").
    pub async fn cool_down(&self, provider: &str, wait: Duration) -> Result<(), redis::RedisError> {
        let ms = wait.as_millis().max(1) as u64;
        let mut conn = self.conn.clone();
        // Keep the longer of an existing and the new cool-down.
        let current: i64 = redis::cmd("PTTL")
            .arg(cooldown_key(provider))
            .query_async(&mut conn)
            .await?;
        if current < ms as i64 {
            let _: () = redis::cmd("SET")
                .arg(cooldown_key(provider))
                .arg(1)
                .arg("PX")
                .arg(ms)
                .query_async(&mut conn)
                .await?;
        }
        metrics::counter!("onboard_provider_cooldowns_total", "provider" => provider.to_string())
            .increment(1);
        Ok(())
    }

    async fn admit_inner(
        &self,
        provider: &'static str,
        action: &'static str,
    ) -> Result<(), ProviderError> {
        let Some(rate) = self.rate(provider, action) else {
            return Ok(());
        };
        let interval_ms = (1000.0 / rate * SAFETY_MARGIN).ceil() as u64;
        let mut conn = self.conn.clone();
        let reply: Result<(i64, i64, i64), _> = GCRA
            .key(Self::limiter_key(provider, action))
            .key(cooldown_key(provider))
            .arg(crate::queue::now_ms())
            .arg(interval_ms)
            .arg(self.max_inline_wait.as_millis() as u64)
            .invoke_async(&mut conn)
            .await;
        let (admitted, wait_ms, cooling_down) = match reply {
            Ok(r) => r,
            Err(e) => {
                // Without the shared limiter we cannot promise the provider's limit: wait
                // and try later rather than send.
                tracing::warn!(error = %e, provider, "rate limiter unavailable");
                return Err(ProviderError::Throttled {
                    code: "RateLimiterUnavailable".into(),
                    retry_after: Duration::from_secs(1),
                });
            }
        };
        let wait = Duration::from_millis(wait_ms.max(0) as u64);
        metrics::histogram!("onboard_rate_limit_wait_seconds", "provider" => provider, "action" => action)
            .record(wait.as_secs_f64());
        if admitted == 1 {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Ok(())
        } else {
            // A job turned away for a slot comes back while the slots before its turn are
            // still reserved, so it finds one within the inline wait. Coming back exactly
            // at its turn would find the line just emptied: each such gap (a fetch's
            // latency) is a slot lost, which measured as 5 % of the limit.
            let retry_after = if cooling_down == 1 {
                wait
            } else {
                wait.saturating_sub(self.max_inline_wait / 2)
            };
            Err(ProviderError::Throttled {
                code: "LocalRateLimit".into(),
                retry_after,
            })
        }
    }
}

impl RequestGate for RedisGate {
    fn admit<'a>(
        &'a self,
        provider: &'static str,
        action: &'static str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.admit_inner(provider, action))
    }
}
