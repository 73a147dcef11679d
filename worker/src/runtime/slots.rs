//! The worker's concurrency slots for one queue, shared by the fetcher (takes) and the ack
//! layer (releases), so the fetcher never claims more jobs than can start at once: a
//! claimed job that waits for a slot would let its lease run down.
//!
//! A slot is given back after the job's outcome is written, not when its handler ends.
//! Nothing renews the lease of an outcome waiting to be written, so those must stay as few
//! as the slots: giving slots back at the handler's end (with up to three writes waiting
//! per slot) drained a stubbed backlog 10-20 % faster, but under CI's load the writes fell
//! more than a 1.5 s lease behind, and jobs whose leases kept expiring used up their
//! attempts (`chaos::kill_9_three_times_in_a_10k_mixed_run`). Renewing those leases until
//! the write ends (`74d3993`, reverted) fixed that but failed
//! `failover::a_master_killed_mid_run_loses_no_job_and_creates_none_twice`: a write that
//! never ends then keeps its lease, and its task, for ever. The write must be bounded first.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// See the module documentation.
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    in_flight: AtomicUsize,
    freed: Notify,
}

impl Slots {
    /// `capacity` slots, all free.
    pub fn new(capacity: usize) -> Self {
        Slots {
            capacity,
            in_flight: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// How many slots there are.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Free slots now.
    pub fn free(&self) -> usize {
        self.capacity
            .saturating_sub(self.in_flight.load(Ordering::Acquire))
    }

    /// Takes one slot.
    pub fn take(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Gives one slot back and wakes the fetcher.
    pub fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }

    /// Resolves when a slot is released (or was released since the last call).
    pub async fn freed(&self) {
        self.freed.notified().await
    }

    /// Jobs running or handed to the worker.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}
