//! The outcome of one attempt as the worker reports it ([`Ack`]), and what the queue made
//! of it ([`AckStatus`]).

use super::error_record::ErrorRecord;

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub enum Ack {
    /// Done; `result` is stored encrypted.
    Succeeded(serde_json::Value),
    /// Try again after `delay_ms` (uses the attempt); `uncertain` flags an unknown effect.
    Retry {
        /// Backoff delay.
        delay_ms: u64,
        /// Why.
        error: ErrorRecord,
        /// The attempt's effect is unknown.
        uncertain: bool,
    },
    /// Throttled: try again after `delay_ms` WITHOUT using the attempt.
    Defer {
        /// Wait.
        delay_ms: u64,
        /// Why.
        error: ErrorRecord,
    },
    /// Dead-letter now.
    Dead(ErrorRecord),
    /// Phase 1 done: wait for a code (or use one supplied early).
    AwaitCode {
        /// How long the code may take, from now on Redis's clock.
        code_lifetime_ms: u64,
        /// The phone, masked, for the `awaiting_code` event.
        masked_phone: String,
    },
    /// The supplied code was wrong: wait for another one (dead after `max_failures`).
    CodeRejected {
        /// How long the next code may take, from now on Redis's clock.
        code_lifetime_ms: u64,
        /// Wrong codes allowed.
        max_failures: u32,
        /// The provider's answer.
        error: ErrorRecord,
    },
    /// Shutdown while the job ran: hand it straight back, its effect unknown (uncertain).
    Release,
    /// Claimed but never started (shutdown): hand it back as it was, not uncertain.
    Unstarted,
}

/// What became of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    /// Recorded as succeeded.
    Succeeded,
    /// Rescheduled with backoff.
    Retry,
    /// Rescheduled without using an attempt.
    Deferred,
    /// Dead-lettered (possibly because attempts ran out).
    Dead,
    /// Waiting for a code.
    AwaitingCode,
    /// Handed back to the queue.
    Released,
    /// The lease was lost (expired and taken over): nothing was recorded.
    Stale,
}
