//! Global rate limits, kept in Redis so that N worker processes together never exceed a
//! provider's limit (in-process limiters are per process and cannot promise that).
//!
//! One limiter per [`Limit`](crate::providers::Limit): each request reserves the next free slot (`slots.lua`: a whole
//! rate's slots fill each second but its last [`SECOND_GUARD`]). The worker's claim hands
//! out most slots along with the jobs (`queue/scripts/fetch.lua`); `gcra.lua` hands out the
//! rest, to requests a job makes beyond its first. A short wait is slept, and a request that
//! wakes more than [`SEND_LATENESS`] after its slot asks for a new one rather than land in the
//! next second; a longer wait comes back as
//! [`ProviderError::Throttled`] (by [`ThrottledBy::OurLimit`]) so the job is rescheduled
//! without using an attempt. When a provider itself says "slow down",
//! [`RedisGate::cool_down`] pauses that provider for every worker (`cool_down.lua`).

use crate::config::RateLimits;
use crate::providers::{Action, Provider, RequestGate};
use crate::queue::keys::ProviderKeys;
use crate::redis_link::RedisConnection;
use crate::{ProviderError, ThrottledBy};
use futures::future::BoxFuture;
use redis::Script;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("slots.lua"),
        "\n",
        include_str!("gcra.lua")
    ))
});
static COOL_DOWN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("cool_down.lua")));

/// Each second's request slots are spread over its first (1 s - this) (`slots.lua`): a
/// request that reaches the provider up to this late still counts in its own second, so no
/// slot is lost to a safety margin on the rate (a sliding second still holds exactly `rate`
/// slots). What it costs: a request whose turn falls in the guard waits for the next
/// second's first slot. 20 ms, with 10 ms of it for the way to the provider, was too little
/// on a loaded machine (CI's chaos test saw 101 POLYV requests in one second), and a real
/// provider's route is longer and less even than loopback.
pub const SECOND_GUARD: Duration = Duration::from_millis(100);

/// How late after its slot a request may still be sent on it, leaving the rest of the
/// [`SECOND_GUARD`] (75 ms) for the request's way to the provider. A worker that wakes later
/// than this (a loaded machine, a stalled runtime) would land in the next second and push
/// it over the limit, so it gives the slot up and asks for a new one.
pub const SEND_LATENESS: Duration = Duration::from_millis(25);

/// Sleeps until `planned`, a request slot of `action`'s limit; whether the slot is still
/// good then (woken no more than [`SEND_LATENESS`] late). A missed slot is counted in
/// `onboard_rate_limit_slots_missed_total`.
pub async fn slot_reached(planned: Instant, action: Action) -> bool {
    tokio::time::sleep_until(planned.into()).await;
    let missed = Instant::now() > planned + SEND_LATENESS;
    if missed {
        metrics::counter!("onboard_rate_limit_slots_missed_total", "provider" => action.provider.as_str(), "action" => action.name)
            .increment(1);
    }
    !missed
}

/// How many times in a row [`RedisGate::admit`] asks again after waking too late for its
/// slot before it hands the job back as throttled.
const MISSED_SLOTS_RETRIED: u32 = 3;

/// How many live claims in a row earn bulk one, for bulk to keep `share` of a provider's
/// rate (0: bulk is never owed; it gets what live leaves).
pub fn live_per_bulk(share: f64) -> u64 {
    if share.is_nan() || share <= 0.0 {
        return 0;
    }
    ((1.0 - share.min(1.0)) / share).round().max(0.0) as u64
}

/// The Redis-side gate every provider request passes.
#[derive(Clone)]
pub struct RedisGate {
    conn: RedisConnection,
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
    pub fn new(conn: RedisConnection, limits: RateLimits, max_inline_wait: Duration) -> Self {
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
            .key(ProviderKeys::new(provider).cooldown())
            .arg(ms)
            .invoke_async(&mut conn)
            .await?;
        metrics::counter!("onboard_provider_cooldowns_total", "provider" => provider.as_str())
            .increment(1);
        Ok(())
    }

    /// Waits for a slot of `action`'s limit, or says when to come back. A slot woken up
    /// for too late (see [`SEND_LATENESS`]) is given up and a new one asked for.
    pub async fn admit(&self, action: Action) -> Result<(), ProviderError> {
        let Some(rate) = action.limit.rate(&self.limits) else {
            return Ok(());
        };
        for _ in 0..MISSED_SLOTS_RETRIED {
            let planned = Instant::now() + self.reserve(action, rate).await?;
            if slot_reached(planned, action).await {
                return Ok(());
            }
        }
        Err(ProviderError::throttled(
            ThrottledBy::OurLimit,
            "RateLimitSlotMissed",
            Duration::ZERO,
        ))
    }

    /// Reserves the next slot of `action`'s limit (at `rate`) and says how long until it,
    /// or says when to come back.
    async fn reserve(&self, action: Action, rate: f64) -> Result<Duration, ProviderError> {
        let keys = ProviderKeys::new(action.provider);
        let mut conn = self.conn.clone();
        let reply: Result<(i64, i64, i64), _> = GCRA
            .key(keys.limit_slot(action.limit))
            .key(keys.cooldown())
            .arg(rate.to_string())
            .arg(SECOND_GUARD.as_micros() as u64)
            .arg(self.max_inline_wait.as_micros() as u64)
            .invoke_async(&mut conn)
            .await;
        let (admitted, wait_us, cooling_down) = match reply {
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
        let wait = Duration::from_micros(wait_us.max(0) as u64);
        metrics::histogram!("onboard_rate_limit_wait_seconds", "provider" => action.provider.as_str(), "action" => action.name)
            .record(wait.as_secs_f64());
        if admitted == 1 {
            return Ok(wait);
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
