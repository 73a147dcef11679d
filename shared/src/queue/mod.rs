//! The durable queue on Redis: one queue per job kind, every state change one Lua script.
//!
//! * [`keys`]: key names (one hash tag per queue) and job ids;
//! * [`cipher`]: payloads, codes and results encrypted at rest;
//! * [`record`]: job states, options, claimed jobs and outcomes;
//! * [`store`]: [`JobStore`], the operations (enqueue, fetch, ack, renew, codes, dead letters);
//! * `scripts`: the Lua scripts, each in its own `.lua` file.

pub mod cipher;
pub mod keys;
pub mod record;
mod scripts;
pub mod store;

pub use record::*;
pub use store::{now_ms, Fetched, JobStore, QueueError, QueueStats};
