//! Webhooks: a token with `webhook = { url, secret }` in its configuration gets every
//! terminal state of the jobs it enqueued POSTed to its URL, signed (`sign`), with an event
//! id to deduplicate on, retried with backoff until taken, at least once.
//!
//! * [`outbox`]: the durable state in Redis (cursor, deliveries); which token enqueued a
//!   job is `serve::owners`;
//! * [`dispatch`]: the tasks that follow the events and make the deliveries;
//! * [`sign`]: the `Onboard-Signature` header.

pub mod dispatch;
pub mod outbox;
pub mod sign;

use super::owners::Owners;
use onboard_shared::config::Config;
use onboard_shared::queue::JobStore;

/// Starts the dispatcher when any token has a webhook; false when none has.
pub fn start(cfg: &Config, store: JobStore, owners: Owners) -> bool {
    if !cfg.api.tokens.iter().any(|t| t.webhook.is_some()) {
        return false;
    }
    let outbox = outbox::Outbox::new(store.connection(), cfg.queue.retention_secs);
    dispatch::Dispatcher::new(store, outbox, owners, &cfg.api).spawn();
    true
}
