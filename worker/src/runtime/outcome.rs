//! What a job handler returns, and how the acknowledgement layer turns it into an [`Ack`]:
//! the one place where error classes become queue decisions.

use backon::{BackoffBuilder, ExponentialBuilder};
use onboard_shared::config::QueueConfig;
use onboard_shared::queue::{Ack, ClaimedJob, CodePhase, ErrorRecord};
use onboard_shared::ProviderError;
use std::time::Duration;

/// How many wrong verify codes a `create-account` job survives.
pub const MAX_CODE_FAILURES: u32 = 3;

/// A successful attempt.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    /// Done; the result is stored encrypted (secret fields are redacted in `status`).
    Succeeded(serde_json::Value),
    /// Phase 1 of `create-account` done: the code was texted to this (masked) phone.
    AwaitingCode {
        /// The phone, masked, for the event.
        masked_phone: String,
    },
}

/// A failed attempt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobFailure {
    /// The provider call failed; its class decides.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Dead-letter now with this record (conflicts, uncertain effects).
    #[error("{}: {}", .0.code, .0.message)]
    Dead(ErrorRecord),
}

/// Turns handler results into acks: retry delays, deferrals, code deadlines.
#[derive(Debug, Clone)]
pub struct OutcomePolicy {
    backoff_base: Duration,
    backoff_cap: Duration,
    code_lifetime: Duration,
}

impl OutcomePolicy {
    /// The policy the queue configuration describes.
    pub fn new(cfg: &QueueConfig) -> Self {
        OutcomePolicy {
            backoff_base: Duration::from_millis(cfg.backoff_base_ms),
            backoff_cap: Duration::from_millis(cfg.backoff_cap_ms),
            code_lifetime: Duration::from_secs(cfg.code_lifetime_secs),
        }
    }

    /// The retry delay after failed attempt number `attempt` (from 1): exponential from the
    /// base, capped, with full jitter (uniform in 0..=delay) so retries of a burst spread out.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let ceiling = ExponentialBuilder::default()
            .with_min_delay(self.backoff_base)
            .with_max_delay(self.backoff_cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.backoff_cap);
        ceiling.mul_f64(rand::random::<f64>())
    }

    /// The deadline is set by the queue on Redis's clock; only the lifetime is ours.
    fn code_lifetime_ms(&self) -> u64 {
        self.code_lifetime.as_millis() as u64
    }

    /// The ack for a handler's result. Errors that are not a [`JobFailure`] (panics,
    /// unexpected errors) are transient: they are retried, never lose the job.
    pub fn ack_for(
        &self,
        job: &ClaimedJob,
        result: Result<JobOutcome, &(dyn std::error::Error + 'static)>,
    ) -> Ack {
        let failure = match result {
            Ok(JobOutcome::Succeeded(value)) => return Ack::Succeeded(value),
            Ok(JobOutcome::AwaitingCode { masked_phone }) => {
                return Ack::AwaitCode {
                    code_lifetime_ms: self.code_lifetime_ms(),
                    masked_phone,
                }
            }
            Err(e) => match e.downcast_ref::<JobFailure>() {
                Some(f) => f.clone(),
                None => JobFailure::Provider(ProviderError::transient(
                    "HandlerError",
                    format!("the handler failed: {e}"),
                )),
            },
        };
        match failure {
            JobFailure::Dead(record) => Ack::Dead(record),
            JobFailure::Provider(err) => {
                let error = ErrorRecord::from_provider(&err);
                match err {
                    ProviderError::Transient { .. } => Ack::Retry {
                        delay_ms: self.retry_delay(job.attempt).as_millis() as u64,
                        error,
                        uncertain: false,
                    },
                    ProviderError::OutcomeUnknown { .. } => Ack::Retry {
                        delay_ms: self.retry_delay(job.attempt).as_millis() as u64,
                        error,
                        uncertain: true,
                    },
                    ProviderError::Throttled { retry_after, .. } => Ack::Defer {
                        delay_ms: retry_after.as_millis().max(1) as u64,
                        error,
                    },
                    ProviderError::CodeRejected { .. } if job.phase == CodePhase::Verify => {
                        Ack::CodeRejected {
                            code_lifetime_ms: self.code_lifetime_ms(),
                            max_failures: MAX_CODE_FAILURES,
                            error,
                        }
                    }
                    ProviderError::CodeRejected { .. } | ProviderError::Permanent { .. } => {
                        Ack::Dead(error)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = OutcomePolicy::new(&QueueConfig::default());
        for attempt in 1..=20 {
            let cap = Duration::from_millis((1000u64 << (attempt - 1).min(20)).min(600_000));
            let d = p.retry_delay(attempt);
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
        let late: Vec<_> = (0..50).map(|_| p.retry_delay(12)).collect();
        assert!(
            late.iter().any(|d| *d > Duration::from_secs(60)),
            "grows toward the cap"
        );
        assert!(late.iter().any(|d| *d != late[0]), "jittered");
    }
}
