//! The worker runtime: how apalis runs our jobs on our Redis queue (APALIS.md), one role
//! per file.
//!
//! * [`backend`]: the apalis `Backend` of one queue ([`RedisBackend`]);
//! * [`fetcher`]: the task that claims jobs into free slots;
//! * [`claimed_ahead`]: jobs the fetcher claimed ahead of free slots (`queue.prefetch`);
//! * [`idle_waiter`]: blocks on the notify list while the queue is empty;
//! * [`live_waker`]: wakes a busy fetcher when a live job arrives;
//! * [`slots`]: the concurrency slots the fetcher and the ack layer share;
//! * [`ack_layer`]: runs a job under its lease, renews it, records the outcome;
//! * [`ack_batcher`]: records successes that end together in one script call;
//! * [`outcome`]: what a handler returns, and the policy that turns it into an ack.

pub mod ack_batcher;
pub mod ack_layer;
pub mod backend;
pub mod claimed_ahead;
pub mod fetcher;
pub mod idle_waiter;
pub mod live_waker;
pub mod outcome;
pub mod slots;

pub use backend::{BackendSettings, RedisBackend};
pub use outcome::{JobFailure, JobOutcome, OutcomePolicy};
