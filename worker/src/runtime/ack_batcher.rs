//! Records successes in batches: the successes that end while an earlier batch is being
//! written wait for it, then go to Redis together in one script call
//! ([`JobStore::ack_succeeded`]).
//!
//! A busy worker finishes many jobs per Redis round trip; one script call each made the
//! per-call cost (argument tables, the script's set-up, one ZREM and one counter update per
//! job) most of what Redis spent on a drained job. An idle worker loses nothing: a lone
//! success finds no batch in flight and is written at once.

use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{AckStatus, JobStore, QueueError};
use std::sync::OnceLock;
use tokio::sync::{mpsc, oneshot};

/// Most successes per script call (bounded so one call stays short for Redis).
const MAX_BATCH: usize = 256;

/// One success waiting to be recorded, and where its status goes.
struct PendingSuccess {
    id: String,
    token: String,
    result: serde_json::Value,
    reply: oneshot::Sender<Result<AckStatus, String>>,
}

/// The batcher of one queue. Its writer task starts with the first success (inside the
/// runtime) and ends when the batcher is dropped.
pub struct AckBatcher {
    kind: JobKind,
    store: JobStore,
    tx: OnceLock<mpsc::UnboundedSender<PendingSuccess>>,
}

impl AckBatcher {
    /// A batcher for successes of `kind`.
    pub fn new(store: JobStore, kind: JobKind) -> Self {
        AckBatcher {
            kind,
            store,
            tx: OnceLock::new(),
        }
    }

    /// Records one success; resolves once its batch is written. The error is the batch's
    /// (Redis unreachable, ...), as text: every job of the batch gets it and retries.
    pub async fn succeeded(
        &self,
        id: &str,
        token: &str,
        result: serde_json::Value,
    ) -> Result<AckStatus, String> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(self.store.clone(), self.kind, rx));
            tx
        });
        let (reply, status) = oneshot::channel();
        let pending = PendingSuccess {
            id: id.to_string(),
            token: token.to_string(),
            result,
            reply,
        };
        tx.send(pending)
            .map_err(|_| "the success writer has stopped".to_string())?;
        status
            .await
            .map_err(|_| "the success writer dropped the job".to_string())?
    }
}

/// The writer task: takes whatever successes are waiting (up to [`MAX_BATCH`]), writes
/// them with one call, answers each, and repeats.
async fn write_batches(
    store: JobStore,
    kind: JobKind,
    mut rx: mpsc::UnboundedReceiver<PendingSuccess>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs: Vec<(&str, &str, &serde_json::Value)> = batch
            .iter()
            .map(|p| (p.id.as_str(), p.token.as_str(), &p.result))
            .collect();
        // ack_succeeded answers for every job it was given, in order.
        let written: Result<Vec<AckStatus>, QueueError> = store.ack_succeeded(kind, &jobs).await;
        match written {
            Ok(statuses) => {
                for (pending, status) in batch.drain(..).zip(statuses) {
                    let _ = pending.reply.send(Ok(status));
                }
            }
            Err(e) => {
                let error = e.to_string();
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(error.clone()));
                }
            }
        }
    }
}
