//! The events stream: every state change of every job is one entry (written by the queue
//! scripts' `emit`), so apps in any language can follow results without polling.
//!
//! This module is the stream's contract on the Rust side: which key holds it
//! ([`stream_key`]), what an entry says ([`Event`]), and how to follow it
//! ([`EventFollower`], blocking reads on connections of its own).
//!
//! On one Redis server there is one stream, [`STREAM_KEY`]. On a Redis Cluster a script can
//! only write keys of its own hash slot, so each provider's queues write to a stream of
//! their own, `onboard:{<provider>}:events`, and a follower reads them all: every job's
//! events stay in order (a job lives in one provider's queues), events of different
//! providers interleave as they arrive.

use crate::jobs::JobKind;
use crate::providers::Provider;
use crate::queue::keys::ProviderKeys;
use crate::queue::{ErrorRecord, JobState, JobStore, QueueError};
use crate::redis_link::RedisConnection;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// The stream every state change is written to, on one Redis server.
pub const STREAM_KEY: &str = "onboard:events";

/// The stream the events of `provider`'s queues go to: [`STREAM_KEY`] on one server, the
/// provider's own on a cluster.
pub fn stream_key(provider: Provider, cluster: bool) -> String {
    if cluster {
        ProviderKeys::new(provider).events()
    } else {
        STREAM_KEY.to_string()
    }
}

/// Entries one read returns at most.
const READ_COUNT: usize = 1000;
/// Events read ahead of the caller, per follower.
const BUFFERED: usize = 10_000;
/// How long one blocking read waits before a reader checks its follower is still there.
const READ_BLOCK: Duration = Duration::from_secs(1);

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

/// Follows every events stream: one reader task per stream, each with blocking reads on a
/// connection of its own (no response timeout: a blocking read on the shared connection
/// would time out and stall it), feeding one channel. Dropping the follower stops them.
pub struct EventFollower {
    rx: mpsc::Receiver<Result<Event, QueueError>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for EventFollower {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

impl EventFollower {
    /// Follows events written from now on.
    pub async fn from_now(store: &JobStore) -> Result<EventFollower, QueueError> {
        Self::from_id(store, "$").await
    }

    /// Follows events after stream id `last_id` (`0` for the whole stream, `$` for now). On
    /// a cluster the id applies to every provider's stream: ids are times (`<ms>-<seq>`).
    pub async fn from_id(store: &JobStore, last_id: &str) -> Result<EventFollower, QueueError> {
        Self::from_ids(store, |_| last_id.to_string()).await
    }

    /// Follows each events stream (see [`JobStore::events_keys`]) after the id `last_id`
    /// gives for its key: for a follower that keeps its place in each stream, exact on a
    /// cluster where the streams' ids are each node's own.
    pub async fn from_ids(
        store: &JobStore,
        last_id: impl Fn(&str) -> String,
    ) -> Result<EventFollower, QueueError> {
        let (tx, rx) = mpsc::channel(BUFFERED);
        let mut readers = Vec::new();
        for key in store.events_keys() {
            let mut conn = store.link().blocking().await?;
            // Resolve "$" to a concrete id now, so nothing between reads is skipped.
            let start = match last_id(&key).as_str() {
                "$" => newest_id(&mut conn, &key).await?,
                other => other.to_string(),
            };
            let reader = StreamReader {
                link: store.link().clone(),
                conn: Some(conn),
                key,
                last_id: start,
                tx: tx.clone(),
            };
            readers.push(tokio::spawn(reader.run()));
        }
        Ok(EventFollower { rx, readers })
    }

    /// The next events, waiting up to `block` for at least one. Entries that are not
    /// events (written by someone else) are skipped.
    pub async fn next_batch(&mut self, block: Duration) -> Result<Vec<Event>, QueueError> {
        let first =
            match tokio::time::timeout(block.max(Duration::from_millis(1)), self.rx.recv()).await {
                Err(_) => return Ok(Vec::new()),
                Ok(None) => return Err(QueueError::Protocol("the events readers stopped".into())),
                Ok(Some(first)) => first?,
            };
        let mut out = vec![first];
        while out.len() < READ_COUNT {
            match self.rx.try_recv() {
                Ok(Ok(event)) => out.push(event),
                Ok(Err(e)) => {
                    // Hand over what was read; the error comes again on a later read if
                    // it persists.
                    tracing::debug!(error = %e, "events read failed");
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

/// The id of `key`'s newest entry (`0` when it is empty).
async fn newest_id(conn: &mut RedisConnection, key: &str) -> Result<String, QueueError> {
    let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(last
        .ids
        .first()
        .map(|e| e.id.clone())
        .unwrap_or_else(|| "0".into()))
}

/// Reads one stream in order and hands its events to the follower.
struct StreamReader {
    link: crate::redis_link::RedisLink,
    conn: Option<RedisConnection>,
    key: String,
    last_id: String,
    tx: mpsc::Sender<Result<Event, QueueError>>,
}

impl StreamReader {
    async fn run(mut self) {
        while !self.tx.is_closed() {
            match self.read().await {
                Ok(events) => {
                    for event in events {
                        if self.tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    self.conn = None;
                    if self.tx.send(Err(e)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// One blocking read (reconnecting first when the last one failed).
    async fn read(&mut self) -> Result<Vec<Event>, QueueError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.link.blocking().await?),
        };
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(&self.last_id)
            .query_async(conn)
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
