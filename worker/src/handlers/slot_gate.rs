//! The gate one job's provider requests pass: its first request of the limit its claim
//! reserved a slot of waits for that slot and goes (it was admitted in the claim, in the
//! order live and bulk work should go); any other request asks the shared gate.

use futures::future::BoxFuture;
use onboard_shared::providers::{Action, Gate, Provider, RequestGate};
use onboard_shared::queue::ReservedSlot;
use onboard_shared::ProviderError;
use std::sync::Mutex;
use std::time::Duration;

/// See the module documentation.
pub struct SlotGate {
    shared: Gate,
    slot: Mutex<Option<ReservedSlot>>,
}

impl SlotGate {
    /// A gate over `shared` holding the job's reserved slot.
    pub fn new(shared: Gate, slot: ReservedSlot) -> Self {
        SlotGate {
            shared,
            slot: Mutex::new(Some(slot)),
        }
    }

    /// The reserved slot, if `action` counts against its limit and it was not used yet.
    fn take(&self, action: Action) -> Option<ReservedSlot> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match *slot {
            Some(s) if s.limit == action.limit => slot.take(),
            _ => None,
        }
    }
}

impl RequestGate for SlotGate {
    fn admit(&self, action: Action) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            match self.take(action) {
                Some(slot) => {
                    let wait = slot.at.saturating_duration_since(std::time::Instant::now());
                    metrics::histogram!("onboard_rate_limit_wait_seconds", "provider" => action.provider.as_str(), "action" => action.name)
                        .record(wait.as_secs_f64());
                    tokio::time::sleep_until(slot.at.into()).await;
                    Ok(())
                }
                None => self.shared.admit(action).await,
            }
        })
    }

    fn cool_down(&self, provider: Provider, wait: Duration) -> BoxFuture<'_, ()> {
        self.shared.cool_down(provider, wait)
    }
}
