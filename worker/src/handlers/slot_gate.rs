//! The gate one job's provider requests pass: its first request of the limit its claim
//! reserved a slot of waits for that slot and goes (it was admitted in the claim, in the
//! order live and bulk work should go); any other request asks the shared gate, and so does
//! a first request that woke too late for its slot (it would land in the next second).

use futures::future::BoxFuture;
use onboard_shared::providers::{Action, Gate, Provider, RequestGate};
use onboard_shared::queue::ReservedSlot;
use onboard_shared::ratelimit::slot_reached;
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
                    if slot_reached(slot.at, action).await {
                        Ok(())
                    } else {
                        self.shared.admit(action).await
                    }
                }
                None => self.shared.admit(action).await,
            }
        })
    }

    fn cool_down(&self, provider: Provider, wait: Duration) -> BoxFuture<'_, ()> {
        self.shared.cool_down(provider, wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onboard_shared::providers::polyv::ADD_CUSTOM_USER;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    /// A shared gate that counts the requests it is asked to admit.
    #[derive(Default)]
    struct CountingGate(AtomicU32);

    impl RequestGate for CountingGate {
        fn admit(&self, _: Action) -> BoxFuture<'_, Result<(), ProviderError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        }

        fn cool_down(&self, _: Provider, _: Duration) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    async fn shared_admits_for_slot_at(at: Instant) -> u32 {
        let shared = Arc::new(CountingGate::default());
        let slot = ReservedSlot {
            limit: ADD_CUSTOM_USER.limit,
            at,
        };
        let gate = SlotGate::new(shared.clone(), slot);
        gate.admit(ADD_CUSTOM_USER).await.expect("admitted");
        shared.0.load(Ordering::SeqCst)
    }

    // Paused: the runtime's clock jumps to the slot, while the wall clock the lateness is
    // judged by has not moved, so the slot is met exactly, however loaded the machine.
    #[tokio::test(start_paused = true)]
    async fn a_slot_in_time_goes_without_asking_the_shared_gate() {
        let at = Instant::now() + Duration::from_secs(3_600);
        assert_eq!(shared_admits_for_slot_at(at).await, 0);
    }

    #[tokio::test]
    async fn a_slot_woken_too_late_for_asks_the_shared_gate_for_a_new_one() {
        // Woken 50 ms after its slot: sent now, the request would count in the next second.
        let at = Instant::now() - Duration::from_millis(50);
        assert_eq!(shared_admits_for_slot_at(at).await, 1);
    }
}
