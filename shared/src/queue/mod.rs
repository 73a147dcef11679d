//! The durable queue on Redis: one queue per job kind, every state change one Lua script.
//!
//! * [`keys`]: key names (one hash tag per queue) and job ids;
//! * [`cipher`]: payloads, codes and results encrypted at rest;
//! * [`record`]: job states, options, claimed jobs and outcomes;
//! * `pending`: jobs enqueued in bulk whose record fetch has not built yet;
//! * [`store`]: [`JobStore`], the operations (enqueue, fetch, ack, renew, codes, dead letters);
//! * [`outcome`]: handler results and how their error class becomes an ack;
//! * [`backend`] and [`ack_layer`]: the apalis backend and its lease/ack layer, which
//!   records successes in batches ([`ack_batcher`]);
//! * `scripts`: the Lua scripts, each in its own `.lua` file.

pub mod ack_batcher;
pub mod ack_layer;
pub mod backend;
pub mod cipher;
pub mod keys;
pub mod outcome;
mod pending;
pub mod record;
mod scripts;
pub mod store;

pub use outcome::{JobFailure, JobOutcome, OutcomePolicy};
pub use record::*;
pub use store::{now_ms, Fetched, JobStore, QueueError, QueueStats};
