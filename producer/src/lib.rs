//! onboard-producer: how apps and people put work into onboard.
//!
//! * [`producer`]: the library API ([`Producer`]): validated enqueue, status, waiting on
//!   results through the events stream, verify codes, dead letters, statistics;
//! * [`backfill`]: streaming CSV / JSON Lines parsing and validation for bulk backfills.

pub mod backfill;
pub mod producer;

pub use producer::{Event, EventFollower, Producer, ProducerError};
