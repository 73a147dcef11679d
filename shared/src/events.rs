//! The events stream: every state change of every job is one entry (written by the queue
//! scripts' `emit`), so apps in any language can follow results without polling.
//!
//! This module is the stream's contract on the Rust side: which key holds it
//! ([`stream_key`]), what an entry says ([`Event`]), and how to follow it
//! ([`EventFollower`], blocking reads on a connection of its own).

use crate::jobs::JobKind;
use crate::queue::{ErrorRecord, JobState, JobStore, QueueError};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// The stream every state change is written to.
pub const STREAM_KEY: &str = "onboard:events";

/// The stream the events of `kind`'s queue go to.
pub fn stream_key(_kind: JobKind) -> &'static str {
    STREAM_KEY
}

/// The change an event records: a job entered a state, or was purged for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// The job entered this state.
    Entered(JobState),
    /// A dead job was deleted by an operator.
    Purged,
}

impl EventState {
    /// The label in the stream's `state` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Entered(state) => state.as_str(),
            EventState::Purged => "purged",
        }
    }

    fn parse(s: &str) -> Option<EventState> {
        match s {
            "purged" => Some(EventState::Purged),
            other => JobState::parse(other).map(EventState::Entered),
        }
    }

    /// The state entered, if any.
    pub fn job_state(self) -> Option<JobState> {
        match self {
            EventState::Entered(state) => Some(state),
            EventState::Purged => None,
        }
    }
}

impl Serialize for EventState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One entry of the events stream.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The stream entry's id (`<ms>-<seq>`), to resume after.
    pub stream_id: String,
    /// The job.
    pub job_id: String,
    /// Its kind.
    pub kind: JobKind,
    /// What happened.
    pub state: EventState,
    /// When (Unix ms).
    pub at_ms: u64,
    /// The attempt number, on `running`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Why, on `retry_scheduled` and `dead`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    /// The masked phone a code went to, on `awaiting_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Why, in words (`lease expired`, `code supplied`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event {
    /// An entry's fields as an event; `None` when the entry is not one (a foreign writer).
    fn parse(stream_id: String, fields: &HashMap<String, redis::Value>) -> Option<Event> {
        let text = |k: &str| -> Option<String> {
            fields
                .get(k)
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
        };
        Some(Event {
            stream_id,
            job_id: text("job_id")?,
            kind: text("kind")?.parse().ok()?,
            state: EventState::parse(&text("state")?)?,
            at_ms: text("at_ms")?.parse().ok()?,
            attempt: text("attempt").and_then(|a| a.parse().ok()),
            error: text("error").and_then(|e| ErrorRecord::parse(&e)),
            phone: text("phone"),
            reason: text("reason"),
        })
    }
}

/// Reads the events stream with blocking reads on a connection of its own (no response
/// timeout: a blocking read on the shared connection would time out and stall it).
pub struct EventFollower {
    conn: redis::aio::MultiplexedConnection,
    last_id: String,
}

impl EventFollower {
    /// Follows events written from now on.
    pub async fn from_now(store: &JobStore) -> Result<EventFollower, QueueError> {
        Self::from_id(store, "$").await
    }

    /// Follows events after stream id `last_id` (`0` for the whole stream, `$` for now).
    pub async fn from_id(store: &JobStore, last_id: &str) -> Result<EventFollower, QueueError> {
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let mut conn = store
            .client()
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        let last_id = if last_id == "$" {
            // Resolve "$" to a concrete id now, so nothing between calls is skipped.
            let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(STREAM_KEY)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await?;
            last.ids
                .first()
                .map(|e| e.id.clone())
                .unwrap_or_else(|| "0".into())
        } else {
            last_id.to_string()
        };
        Ok(EventFollower { conn, last_id })
    }

    /// The next events, waiting up to `block` for at least one. Entries that are not
    /// events (written by someone else) are skipped.
    pub async fn next_batch(&mut self, block: Duration) -> Result<Vec<Event>, QueueError> {
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("COUNT")
            .arg(1000)
            .arg("STREAMS")
            .arg(STREAM_KEY)
            .arg(&self.last_id)
            .query_async(&mut self.conn)
            .await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                self.last_id = entry.id.clone();
                match Event::parse(entry.id, &entry.map) {
                    Some(event) => out.push(event),
                    None => {
                        tracing::debug!(id = %self.last_id, "skipped a stream entry that is not an event")
                    }
                }
            }
        }
        Ok(out)
    }
}
