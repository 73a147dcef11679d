//! The webhook dispatcher: one task follows the events stream from the outbox's cursor and
//! turns every terminal state (succeeded, dead, expired, cancelled) of a job whose token has
//! a webhook into a delivery; another makes the due deliveries, signed, retrying failures
//! with doubling backoff and jitter until the receiver answers 2xx or the attempts run out.
//! At least once: the cursor moves only after the batch's deliveries are written, and a
//! delivery leaves the outbox only once a receiver took it.

use super::outbox::{Delivery, Outbox};
use super::sign;
use crate::serve::owners::Owners;
use onboard_producer::{Event, EventFollower, EventState};
use onboard_shared::config::{ApiConfig, WebhookConfig};
use onboard_shared::events;
use onboard_shared::queue::JobStore;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the deliverer waits when nothing was due.
const IDLE: Duration = Duration::from_millis(100);
/// How long a follower waits after Redis failed before trying again.
const RECONNECT: Duration = Duration::from_secs(1);
/// Deliveries claimed per round.
const PER_ROUND: usize = 32;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why following the events stopped (it starts again from the cursor).
#[derive(Debug, thiserror::Error)]
enum FollowError {
    /// The outbox's Redis calls.
    #[error("outbox: {0}")]
    Outbox(#[from] redis::RedisError),
    /// Reading the events stream.
    #[error("events: {0}")]
    Events(#[from] onboard_shared::queue::QueueError),
}

/// What the two tasks share.
pub struct Dispatcher {
    store: JobStore,
    outbox: Outbox,
    owners: Owners,
    hooks: HashMap<String, WebhookConfig>,
    http: reqwest::Client,
    timeout: Duration,
    max_attempts: u32,
    backoff_base_ms: u64,
    backoff_cap_ms: u64,
}

impl Dispatcher {
    /// A dispatcher for the tokens of `api` that have a webhook.
    pub fn new(store: JobStore, outbox: Outbox, owners: Owners, api: &ApiConfig) -> Dispatcher {
        Dispatcher {
            store,
            outbox,
            owners,
            hooks: api
                .tokens
                .iter()
                .filter_map(|t| t.webhook.clone().map(|w| (t.name.clone(), w)))
                .collect(),
            http: reqwest::Client::new(),
            timeout: Duration::from_millis(api.webhook_timeout_ms),
            max_attempts: api.webhook_max_attempts.max(1),
            backoff_base_ms: api.webhook_backoff_base_ms,
            backoff_cap_ms: api.webhook_backoff_cap_ms,
        }
    }

    /// Starts both tasks; they run as long as the process.
    pub fn spawn(self) {
        let me = Arc::new(self);
        tokio::spawn(me.clone().follow());
        tokio::spawn(me.deliver());
    }

    async fn follow(self: Arc<Self>) {
        loop {
            if let Err(e) = self.follow_from_cursor().await {
                tracing::warn!(error = %e, "webhooks: following the events failed; again in 1 s");
                tokio::time::sleep(RECONNECT).await;
            }
        }
    }

    async fn follow_from_cursor(&self) -> Result<(), FollowError> {
        // A place in each stream (one on a single server, one per provider on a cluster,
        // where ids are each node's own); none yet: the whole stream (deliveries are
        // created once per event, and only for jobs a webhook token enqueued).
        let cursors = self.outbox.cursors().await?;
        let mut follower = EventFollower::from_ids(&self.store, |stream| {
            cursors.get(stream).cloned().unwrap_or_else(|| "0".into())
        })
        .await?;
        let cluster = self.store.link().is_cluster();
        loop {
            let batch = follower.next_batch(Duration::from_secs(1)).await?;
            let mut handled = HashMap::new();
            for event in &batch {
                self.consider(event).await?;
                let stream = events::stream_key(event.kind.provider(), cluster);
                handled.insert(stream, event.stream_id.clone());
            }
            self.outbox.set_cursors(&handled).await?;
        }
    }

    /// Writes the delivery of a terminal event of a webhook token's job.
    async fn consider(&self, event: &Event) -> redis::RedisResult<()> {
        let EventState::Entered(state) = event.state else {
            return Ok(());
        };
        if !state.is_final() {
            return Ok(());
        }
        let Some(token) = self.owners.owner(&event.job_id).await? else {
            return Ok(());
        };
        if !self.hooks.contains_key(&token) {
            return Ok(());
        }
        // Unique across streams too (two nodes' streams can hand out the same id).
        let id = format!("evt_{}_{}", event.stream_id, event.job_id);
        let body = serde_json::json!({
            "id": id,
            "type": format!("job.{}", state.as_str()),
            "created": event.at_ms / 1000,
            "data": event,
        });
        let delivery = Delivery {
            id,
            token,
            body: body.to_string(),
            attempts: 0,
        };
        self.outbox.add(&delivery, now_ms()).await.map(|_| ())
    }

    async fn deliver(self: Arc<Self>) {
        let lease_ms = self.timeout.as_millis() as u64 + 5_000;
        loop {
            let due = match self.outbox.claim_due(now_ms(), lease_ms, PER_ROUND).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: reading the outbox failed");
                    tokio::time::sleep(RECONNECT).await;
                    continue;
                }
            };
            if due.is_empty() {
                tokio::time::sleep(IDLE).await;
                continue;
            }
            futures::future::join_all(due.into_iter().map(|d| self.attempt(d))).await;
        }
    }

    /// One attempt at one delivery, and what follows from its answer.
    async fn attempt(&self, mut d: Delivery) {
        let Some(hook) = self.hooks.get(&d.token) else {
            tracing::warn!(event = %d.id, token = %d.token, "webhooks: token has no webhook now");
            let _ = self.outbox.give_up(&d).await;
            return;
        };
        let t = now_ms() / 1000;
        let answer = self
            .http
            .post(&hook.url)
            .timeout(self.timeout)
            .header("Content-Type", "application/json")
            .header("Onboard-Event-Id", &d.id)
            .header(
                sign::HEADER,
                sign::signature(hook.secret.expose(), t, &d.body),
            )
            .body(d.body.clone())
            .send()
            .await;
        let failure = match answer {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => Some(format!("answered {}", resp.status())),
            Err(e) if e.is_timeout() => Some("no answer in time".to_string()),
            Err(e) => Some(format!("unreachable: {e}")),
        };
        d.attempts += 1;
        let result = match failure {
            None => self.outbox.done(&d.id).await,
            Some(why) if d.attempts >= self.max_attempts => {
                tracing::warn!(event = %d.id, token = %d.token, attempts = d.attempts, %why, "webhooks: giving up");
                self.outbox.give_up(&d).await
            }
            Some(why) => {
                let wait = self.backoff(d.attempts);
                tracing::info!(event = %d.id, token = %d.token, attempts = d.attempts, %why, wait_ms = wait, "webhooks: will retry");
                self.outbox.retry(&d, now_ms() + wait).await
            }
        };
        if let Err(e) = result {
            // The lease runs out and the delivery is tried again: at least once.
            tracing::warn!(error = %e, event = %d.id, "webhooks: recording the attempt failed");
        }
    }

    /// Doubling from the base, capped, with jitter down to half.
    fn backoff(&self, attempts: u32) -> u64 {
        let full = self
            .backoff_base_ms
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
            .min(self.backoff_cap_ms)
            .max(1);
        rand::thread_rng().gen_range(full / 2..=full)
    }
}
