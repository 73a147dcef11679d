//! Webhooks: a token with `webhook = { url, secret }` in its configuration gets every
//! terminal state of the jobs it enqueued POSTed to its URL, signed (`sign`), with an event
//! id to deduplicate on, retried with backoff until taken, at least once.
//!
//! * [`outbox`]: the durable state in Redis (owners, cursor, deliveries);
//! * [`dispatch`]: the tasks that follow the events and make the deliveries;
//! * [`sign`]: the `Onboard-Signature` header.

pub mod dispatch;
pub mod outbox;
pub mod sign;

use onboard_shared::config::Config;
use onboard_shared::queue::JobStore;
use std::collections::HashSet;

/// What the handlers need: recording which token enqueued which job.
pub struct Webhooks {
    outbox: outbox::Outbox,
    with_hooks: HashSet<String>,
}

impl Webhooks {
    /// Starts the dispatcher when any token has a webhook; `None` when none has.
    pub async fn start(cfg: &Config, store: JobStore) -> redis::RedisResult<Option<Webhooks>> {
        let with_hooks: HashSet<String> = cfg
            .api
            .tokens
            .iter()
            .filter(|t| t.webhook.is_some())
            .map(|t| t.name.clone())
            .collect();
        if with_hooks.is_empty() {
            return Ok(None);
        }
        let outbox = outbox::Outbox::connect(&cfg.redis_url, cfg.queue.retention_secs).await?;
        dispatch::Dispatcher::new(store, outbox.clone(), &cfg.api).spawn();
        Ok(Some(Webhooks { outbox, with_hooks }))
    }

    /// True when `token` has a webhook (its jobs' ids are to be recorded).
    pub fn wants(&self, token: &str) -> bool {
        self.with_hooks.contains(token)
    }

    /// Records that `token` enqueued `ids`, when it has a webhook. A failure is logged: the
    /// jobs are enqueued either way, only their deliveries would be missing.
    pub async fn own(&self, ids: &[String], token: &str) {
        if !self.wants(token) {
            return;
        }
        if let Err(e) = self.outbox.own(ids, token).await {
            tracing::warn!(error = %e, token, jobs = ids.len(), "webhooks: cannot record the jobs' owner; their terminal states will not be delivered");
        }
    }
}
