//! Fault injection: extra latency, transient errors, throttling and "performed but never
//! answered" timeouts, drawn from a seeded RNG so a run can be repeated exactly.
//!
//! Faults are decided after the signature check and before the action, so a client only
//! sees them on requests that would otherwise have been served. Every provider serves its
//! actions through [`serve`], the one place faults are applied.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The fault settings, as posted to and answered by `POST /_sandbox/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultSettings {
    /// Seed of the fault RNG.
    pub seed: u64,
    /// Share of requests answered with a transient error, action not performed.
    pub error_rate: f64,
    /// Share of requests whose action is performed but whose answer is held for `hang_ms`.
    pub timeout_rate: f64,
    /// Delay before every answer.
    pub latency_ms: u64,
    /// How long a "timeout" answer is held back.
    pub hang_ms: u64,
    /// Share of requests answered with the provider's throttling error, action not performed.
    pub throttle_rate: f64,
    /// Only these actions get faults; `None` means all.
    pub actions: Option<Vec<String>>,
    /// At most this many faults (errors, throttles, timeouts) in all, then every request is
    /// served; `None` means no cap. "Time out the first create only" is `1`.
    pub max_faults: Option<u64>,
    /// Look-ups (ServiceGetCustomerList, get-custom-user) do not see what was created less
    /// than this long ago, like a provider whose reads lag its writes.
    pub lookup_lag_ms: u64,
    /// Each request is counted, for the rate limits and the per-second figures, as though it
    /// arrived up to this much later (drawn evenly for each request): an uneven way from the
    /// client to the provider (a loaded client machine, a long route), which moves some
    /// requests sent near a second's end into the next while others stay.
    pub transit_jitter_ms: u64,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            seed: 0,
            error_rate: 0.0,
            timeout_rate: 0.0,
            latency_ms: 0,
            // Long enough that any sane client timeout fires first.
            hang_ms: 30_000,
            throttle_rate: 0.0,
            actions: None,
            max_faults: None,
            lookup_lag_ms: 0,
            transit_jitter_ms: 0,
        }
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve it normally.
    Proceed,
    /// Answer a transient error without performing the action.
    Error,
    /// Answer the throttling error without performing the action.
    Throttle,
    /// Perform the action, then hold the answer for this long.
    Timeout(Duration),
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Sleep this long before answering.
    pub latency: Duration,
    /// What to answer.
    pub outcome: Outcome,
}

/// The current settings and their RNG.
#[derive(Debug)]
pub struct Faults {
    settings: FaultSettings,
    rng: StdRng,
    /// Faults injected so far (for `max_faults`).
    injected: u64,
}

impl Faults {
    /// Faults with `settings`, RNG seeded from `settings.seed`.
    pub fn new(settings: FaultSettings) -> Self {
        let rng = StdRng::seed_from_u64(settings.seed);
        Faults {
            settings,
            rng,
            injected: 0,
        }
    }

    /// The current settings.
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    /// How much later than now the request arriving now is counted (see
    /// [`FaultSettings::transit_jitter_ms`]). Draws only when a jitter is set, so other
    /// draws stay as they were.
    pub fn transit_ms(&mut self) -> u64 {
        match self.settings.transit_jitter_ms {
            0 => 0,
            jitter => self.rng.gen_range(0..=jitter),
        }
    }

    /// Decides the fate of one request of `action`.
    pub fn decide(&mut self, action: &str) -> Decision {
        let s = &self.settings;
        let applies = s
            .actions
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == action));
        if !applies {
            return Decision {
                latency: Duration::ZERO,
                outcome: Outcome::Proceed,
            };
        }
        let latency = Duration::from_millis(s.latency_ms);
        let total = s.error_rate + s.throttle_rate + s.timeout_rate;
        let spent = s.max_faults.is_some_and(|max| self.injected >= max);
        // Only draw when some rate is set, so turning faults on does not shift other draws.
        let outcome = if total <= 0.0 || spent {
            Outcome::Proceed
        } else {
            let r: f64 = self.rng.gen();
            if r < s.error_rate {
                Outcome::Error
            } else if r < s.error_rate + s.throttle_rate {
                Outcome::Throttle
            } else if r < total {
                Outcome::Timeout(Duration::from_millis(s.hang_ms))
            } else {
                Outcome::Proceed
            }
        };
        if outcome != Outcome::Proceed {
            self.injected += 1;
        }
        Decision { latency, outcome }
    }
}

impl Faults {
    /// How long look-ups lag behind creates.
    pub fn lookup_lag(&self) -> Duration {
        Duration::from_millis(self.settings.lookup_lag_ms)
    }
}

/// A fault that answers in place of the action, which is then not performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// The provider's transient error.
    Error,
    /// The provider's throttling answer.
    Throttle,
}

/// Serves one request of `action` under the current faults: waits the latency, answers an
/// injected error or throttle (from `injected`) without performing the action, or performs
/// it (counting a success) and, for a timeout, holds the answer back.
pub async fn serve<T, E>(
    st: &crate::state::AppState,
    action: &str,
    perform: impl FnOnce() -> Result<T, E>,
    injected: impl FnOnce(Injected) -> Result<T, E>,
) -> Result<T, E> {
    let decision = crate::lock::lock(&st.faults).decide(action);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    match decision.outcome {
        Outcome::Error => return injected(Injected::Error),
        Outcome::Throttle => return injected(Injected::Throttle),
        Outcome::Proceed | Outcome::Timeout(_) => {}
    }
    let result = perform();
    if result.is_ok() {
        crate::lock::lock(&st.stats).success(action);
    }
    if let Outcome::Timeout(hang) = decision.outcome {
        // The action happened; the client must not learn so in time.
        tokio::time::sleep(hang).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_is_none_by_default_and_spread_up_to_its_jitter() {
        let mut f = Faults::new(FaultSettings::default());
        assert!((0..100).all(|_| f.transit_ms() == 0));
        let mut f = Faults::new(FaultSettings {
            transit_jitter_ms: 40,
            ..FaultSettings::default()
        });
        let drawn: Vec<u64> = (0..1_000).map(|_| f.transit_ms()).collect();
        assert!(drawn.iter().all(|&t| t <= 40));
        assert!(drawn.iter().any(|&t| t < 10) && drawn.iter().any(|&t| t > 30));
    }

    #[test]
    fn no_faults_by_default() {
        let mut f = Faults::new(FaultSettings::default());
        for _ in 0..100 {
            assert_eq!(f.decide("CreateAccount").outcome, Outcome::Proceed);
        }
    }

    #[test]
    fn action_filter_and_full_error_rate() {
        let mut f = Faults::new(FaultSettings {
            error_rate: 1.0,
            actions: Some(vec!["CreateAccount".into()]),
            ..FaultSettings::default()
        });
        assert_eq!(f.decide("CreateAccount").outcome, Outcome::Error);
        assert_eq!(f.decide("GetCountryCodes").outcome, Outcome::Proceed);
    }

    #[test]
    fn faults_stop_at_their_cap() {
        let mut f = Faults::new(FaultSettings {
            timeout_rate: 1.0,
            max_faults: Some(1),
            ..FaultSettings::default()
        });
        assert!(matches!(f.decide("x").outcome, Outcome::Timeout(_)));
        assert_eq!(f.decide("x").outcome, Outcome::Proceed);
    }

    #[test]
    fn same_seed_same_draws() {
        let settings = FaultSettings {
            seed: 7,
            error_rate: 0.3,
            timeout_rate: 0.3,
            ..FaultSettings::default()
        };
        let mut a = Faults::new(settings.clone());
        let mut b = Faults::new(settings);
        for _ in 0..50 {
            assert_eq!(a.decide("x"), b.decide("x"));
        }
    }
}
