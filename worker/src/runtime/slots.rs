//! The worker's concurrency slots for one queue, shared by the fetcher (takes) and the ack
//! layer (gives back), so the fetcher never claims more jobs than can start at once: a
//! claimed job that waits for a slot would let its lease run down.
//!
//! A slot is a running handler: it is given back when the handler ends, while its outcome
//! is still being written, so the next claim overlaps that write instead of waiting a
//! round trip for it. Outcomes being written still count against the worker's tasks
//! ([`Slots::worker_tasks`], the apalis concurrency, [`TASKS_PER_SLOT`] per slot), so a
//! claimed job always has a task to start in at once, even while writes are slow.
//!
//! An outcome being written keeps its lease renewed (`ack_layer`) until the write ends. A
//! first version of this change renewed nothing after the handler: under CI's load the
//! writes fell more than a 1.5 s lease behind and jobs whose leases kept expiring used up
//! their attempts (`chaos::kill_9_three_times_in_a_10k_mixed_run`; reverted in `9641d60`).
//! The write is bounded, so the renewal is too: each call times out (5 s on one server,
//! 30 s on a cluster), and `record` stops retrying a lease's length after it began. A second
//! version (`74d3993`, reverted in `177aae8`) failed
//! `failover::a_master_killed_mid_run_loses_no_job_and_creates_none_twice`: with four times
//! the tasks renewing leases, the cluster connection wedged when the master died, and
//! nothing was claimed again. The shared cluster connection now replaces itself when it
//! wedges (`onboard_shared::redis_link::HealingCluster`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// The worker's tasks per slot: one for the handler, the rest for outcomes being written.
/// Successes are written in batches, one batch in flight per queue (`ack_batcher`); while
/// it is, the next gathers, so a busy worker has up to about two slots' worth of outcomes
/// unwritten, and a slower write more. Measured on a 200,000-job drain: 2 per slot gained
/// nothing over giving the slot back after the write, 4 gained 10-20 %.
pub const TASKS_PER_SLOT: usize = 4;

/// See the module documentation.
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    /// Jobs handed to the worker whose handler has not ended.
    in_flight: AtomicUsize,
    /// Jobs whose handler ended and whose outcome is being written.
    recording: AtomicUsize,
    freed: Notify,
}

impl Slots {
    /// `capacity` slots, all free.
    pub fn new(capacity: usize) -> Self {
        Slots {
            capacity,
            in_flight: AtomicUsize::new(0),
            recording: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// How many slots there are.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The apalis concurrency that goes with `capacity` slots: a task per running handler
    /// and per outcome being written.
    pub fn worker_tasks(capacity: usize) -> usize {
        capacity * TASKS_PER_SLOT
    }

    /// Free slots now: handlers that may start, as long as each has a task to start in.
    pub fn free(&self) -> usize {
        let running = self.in_flight.load(Ordering::Acquire);
        let recording = self.recording.load(Ordering::Acquire);
        let handlers = self.capacity.saturating_sub(running);
        let tasks = Self::worker_tasks(self.capacity).saturating_sub(running + recording);
        handlers.min(tasks)
    }

    /// Takes one slot.
    pub fn take(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A handler ended: its slot is free, and its outcome is being written until the
    /// returned [`Recording`] is dropped. Wakes the fetcher.
    pub fn ended(self: &Arc<Self>) -> Recording {
        self.recording.fetch_add(1, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
        Recording(self.clone())
    }

    /// Gives back a slot whose job never started (the worker was gone) and wakes the
    /// fetcher.
    pub fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }

    /// Resolves when a slot is released (or was released since the last call).
    pub async fn freed(&self) {
        self.freed.notified().await
    }
}

/// An outcome being written: it holds one of the worker's tasks until dropped (also when
/// the write is abandoned), then wakes the fetcher.
#[derive(Debug)]
pub struct Recording(Arc<Slots>);

impl Drop for Recording {
    fn drop(&mut self) {
        self.0.recording.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_frees_when_its_handler_ends_while_writes_stay_bounded() {
        let slots = Arc::new(Slots::new(2));
        slots.take();
        slots.take();
        assert_eq!(slots.free(), 0);
        // Both handlers end; their outcomes are being written: both slots are free.
        let first = slots.ended();
        let second = slots.ended();
        assert_eq!(slots.free(), 2);
        // More run while those writes last, until the worker's tasks are all in use.
        let mut writes = vec![first, second];
        while writes.len() + 1 < Slots::worker_tasks(2) {
            slots.take();
            writes.push(slots.ended());
        }
        slots.take();
        assert_eq!(slots.free(), 0, "writes and one handler fill every task");
        writes.pop();
        assert_eq!(slots.free(), 1);
        writes.clear();
        assert_eq!(slots.free(), 1, "one handler still runs");
    }
}
