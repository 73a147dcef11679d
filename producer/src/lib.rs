//! onboard-producer: how apps and people put work into onboard.
//!
//! * [`producer`]: the library API ([`Producer`]): validated enqueue, status, waiting on
//!   results through the events stream, verify codes, dead letters, statistics;
//! * [`work`]: units of work ([`Work`]): one job, or a customer to onboard (two jobs);
//! * [`follow`]: following many jobs to the end ([`JobsFollower`]);
//! * [`backfill`]: streaming CSV / JSON Lines parsing and validation for bulk backfills.
//!
//! The events stream's contract ([`Event`], [`EventFollower`]) lives in `onboard-shared`
//! beside the queue that writes it, and is re-exported here.

pub mod backfill;
pub mod follow;
pub mod producer;
pub mod work;

pub use follow::JobsFollower;
pub use onboard_shared::events::{Event, EventFollower, EventState};
pub use producer::{Producer, ProducerError, WorkCheck};
pub use work::{Work, WorkEnqueued, WorkKeys, WorkOptions};
