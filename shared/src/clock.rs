//! The one clock of this process: Unix milliseconds from the system clock.
//!
//! It stamps what a caller hands to Redis (enqueue times, code deadlines) and measures
//! waits. Which clock decides leases, schedules and rate-limit slots is said where each
//! decision is made: the queue scripts and the limiter's script.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds (0 if the system clock reads before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
