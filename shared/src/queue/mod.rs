//! The durable queue on Redis: one queue per job kind, every state change one Lua script.
//!
//! What the queue holds and hands out:
//! * [`job_state`]: [`JobState`], the one list of states;
//! * [`options`]: what an enqueue takes and answers;
//! * [`claimed`]: a job as a worker holds it ([`ClaimedJob`]);
//! * [`ack`]: an attempt's outcome ([`Ack`]) and what the queue made of it;
//! * [`error_record`]: why an attempt failed, as stored;
//! * [`status`]: [`JobStatus`] and [`QueueStats`], what operators read back.
//!
//! How it sits in Redis:
//! * [`keys`]: key names (one hash tag per queue); [`ids`]: job ids;
//! * [`cipher`]: payloads, codes and results encrypted at rest (`compact`: a payload's
//!   fixed JSON runs packed before it is sealed); `digest`: the keyed
//!   digest of a payload kept beside its idempotency key;
//! * `idempotency`: idempotency keys as entries of small bucket hashes, expiring with
//!   their jobs;
//! * `pending`: jobs enqueued in bulk whose record fetch has not built yet;
//! * `scripts`: the Lua scripts, each in its own `.lua` file, and `replies`, where each
//!   script's reply is decoded once into a typed value;
//! * [`store`]: [`JobStore`], the operations, split by role (enqueue, claim, complete,
//!   dependencies, codes, admin).
//!
//! The worker runtime that drives fetch, leases and acks lives in the `onboard-worker`
//! crate; this module is what both it and an app embedding the producer need.

pub mod ack;
pub mod browse;
pub mod cipher;
pub mod claimed;
mod compact;
mod digest;
pub mod error_record;
mod idempotency;
pub mod ids;
pub mod job_state;
pub mod keys;
pub mod options;
mod pending;
mod replies;
mod scripts;
pub mod status;
pub mod store;

pub use ack::{Ack, AckStatus};
pub use claimed::{ClaimedJob, CodePhase, ReservedSlot};
pub use error_record::ErrorRecord;
pub use idempotency::BUCKETS as IDEMPOTENCY_BUCKETS;
pub use job_state::JobState;
pub use options::{EnqueueOptions, Enqueued, KeyCheck, Lane};
pub use status::{JobStatus, QueueStats};
pub use store::{
    BatchState, BatchStatus, ClaimRequest, Fetched, JobStore, QueueError, RekeyReport,
};
