//! Key names: each a method, so no code spells a key by hand.
//!
//! All keys of one provider share its Redis Cluster hash tag, `onboard:{<provider>}:`, so
//! the claim script can read the provider's rate limiter and every queue that spends its
//! capacity in one slot (DESIGN.md, "Sharing the providers' capacity"). Inside it, each job
//! kind's keys start with `onboard:{<provider>}:<kind>:`. The scripts get both prefixes
//! and build the same names (see `scripts/common.lua`).
//!
//! Due jobs wait in one list per kind, lane and source (`ready:<lane>:<source>`); the
//! provider's ring of each lane (`ring:<lane>`) names the `<kind>|<source>` lists that have
//! work, and the claim takes from them in turn.

use super::options::Lane;
use crate::jobs::JobKind;
use crate::providers::{Limit, Provider};

/// The keys one provider's queues share.
#[derive(Debug, Clone)]
pub struct ProviderKeys {
    provider: Provider,
    prefix: String,
}

impl ProviderKeys {
    /// Keys of `provider`.
    pub fn new(provider: Provider) -> Self {
        ProviderKeys {
            provider,
            prefix: format!("onboard:{{{provider}}}:"),
        }
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// `onboard:{<provider>}:`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// List idle workers block on; every job made ready pushes a wake-up token.
    pub fn notify(&self) -> String {
        self.key("notify")
    }

    /// List busy workers block on; every enqueue of live jobs pushes a wake-up token, so a
    /// worker draining bulk work claims a live job at once, into a slot kept free for it.
    pub fn notify_live(&self) -> String {
        self.key("notify:live")
    }

    /// Stream: the provider's events, on a Redis Cluster (one server has one stream for
    /// all, `events::STREAM_KEY`).
    pub fn events(&self) -> String {
        self.key("events")
    }

    /// List: the `<kind>|<source>` entries of `lane` whose lists have work, taken in turn.
    pub fn ring(&self, lane: Lane) -> String {
        self.key(&format!("ring:{lane}"))
    }

    /// Hash: how lanes have shared the capacity lately (live claims since the last bulk one).
    pub fn lanes(&self) -> String {
        self.key("lanes")
    }

    /// Hash: source → weight (default 1) for the round-robin within a lane.
    pub fn weights(&self) -> String {
        self.key("weights")
    }

    /// Set: sources (batches) paused: their entries stay out of the rings.
    pub fn paused_sources(&self) -> String {
        self.key("paused-sources")
    }

    /// Set: job kinds paused (e.g. during a provider outage): claims skip them.
    pub fn paused_kinds(&self) -> String {
        self.key("paused-kinds")
    }

    /// Hash: one source's counters (enqueued, succeeded, dead, expired, cancelled) and, for a
    /// batch, its state here (`active`, `paused`, `cancelled`).
    pub fn source(&self, source: &str) -> String {
        self.key(&format!("source:{source}"))
    }

    /// String: the theoretical arrival time of `limit`'s next request (GCRA).
    pub fn limit_slot(&self, limit: Limit) -> String {
        self.key(&format!("rl:{}", limit.key_name()))
    }

    /// String with a TTL: the provider paused everyone ("slow down") until it expires.
    pub fn cooldown(&self) -> String {
        self.key("rl:cooldown")
    }
}

/// The Redis keys of one job kind's queue.
#[derive(Debug, Clone)]
pub struct QueueKeys {
    kind: JobKind,
    provider: ProviderKeys,
    prefix: String,
}

impl QueueKeys {
    /// Keys of the queue for `kind`.
    pub fn new(kind: JobKind) -> Self {
        let provider = ProviderKeys::new(kind.provider());
        QueueKeys {
            kind,
            prefix: format!("{}{kind}:", provider.prefix()),
            provider,
        }
    }

    /// The kind this queue holds.
    pub fn kind(&self) -> JobKind {
        self.kind
    }

    /// The keys its provider's queues share.
    pub fn provider(&self) -> &ProviderKeys {
        &self.provider
    }

    /// `onboard:{<provider>}:<kind>:`, handed to every script.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// List: due job ids of one lane and source, FIFO.
    pub fn ready(&self, lane: Lane, source: &str) -> String {
        self.key(&format!("ready:{lane}:{source}"))
    }

    /// Set: the `<lane>:<source>` lists of this kind that may have work.
    pub fn sources(&self) -> String {
        self.key("sources")
    }

    /// This kind's entry for `source` in a ring.
    pub fn ring_entry(&self, source: &str) -> String {
        format!("{}|{source}", self.kind)
    }

    /// Sorted set: retries and run-at times, by due time.
    pub fn scheduled(&self) -> String {
        self.key("scheduled")
    }

    /// Sorted set: running jobs, by lease expiry.
    pub fn leased(&self) -> String {
        self.key("leased")
    }

    /// Sorted set: dead letters, by death time.
    pub fn dead(&self) -> String {
        self.key("dead")
    }

    /// Hash: error code → how many dead letters have it (see `dead_code`).
    pub fn dead_codes(&self) -> String {
        format!("{}dead-codes", self.prefix)
    }

    /// Sorted set: the dead letters whose error has `code`, by death time (the console's
    /// groups; the dead set stays the truth).
    pub fn dead_code(&self, code: &str) -> String {
        format!("{}dead-code:{code}", self.prefix)
    }

    /// Sorted set: jobs awaiting a verify code, by deadline.
    pub fn awaiting(&self) -> String {
        self.key("awaiting")
    }

    /// Sorted set: children waiting on a parent, by when they were last looked at.
    pub fn waiting(&self) -> String {
        self.key("waiting")
    }

    /// Hash: the record of one job.
    pub fn job(&self, id: &str) -> String {
        self.key(&format!("job:{id}"))
    }

    /// Hash: payloads and metadata of jobs enqueued and not claimed yet (see `pending`).
    pub fn pending(&self) -> String {
        self.key("pending")
    }

    /// Hash: counters (enqueued, succeeded, dead, expired, cancelled, leases_expired).
    pub fn counts(&self) -> String {
        self.key("counts")
    }

    /// Hash: one bucket of idempotency keys (`bucket`: 4 hex digits, or `*` in a pattern),
    /// key hash → the first job's id, its payload digest and, once it finished, an expiry
    /// (see `idempotency`).
    pub fn idempotency(&self, bucket: &str) -> String {
        self.key(&format!("idem:{bucket}"))
    }

    /// String: where the idempotency sweeper goes on (the next bucket it looks at).
    pub fn idempotency_sweep(&self) -> String {
        self.key("idem-sweep")
    }
}

/// The registry of batches (backfill runs), outside any queue: a sorted set of batch ids by
/// creation time. It shares the hash tag `{batches}` with the batches' own keys, so one
/// pipeline registers a batch on a Redis Cluster too.
pub const BATCHES: &str = "onboard:{batches}";

/// Hash: one batch's label, creation time and state (its per-provider counters are in
/// [`ProviderKeys::source`]).
pub fn batch(id: &str) -> String {
    format!("onboard:{{batches}}:{id}")
}

/// A source name as it appears in key names: letters, digits and `_-.:@`, at most 64
/// characters; anything else becomes `_`. Empty is `default`.
pub fn source_name(source: &str) -> String {
    let cleaned: String = source
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.:@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "default".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_keys_share_one_hash_tag() {
        for kind in [JobKind::CreateCustomer, JobKind::BindDevices] {
            let k = QueueKeys::new(kind);
            let p = k.provider();
            for key in [
                k.ready(Lane::Live, "app"),
                k.sources(),
                k.scheduled(),
                k.leased(),
                k.dead(),
                k.awaiting(),
                k.waiting(),
                k.job("x"),
                k.counts(),
                k.pending(),
                k.idempotency("7fff"),
                k.idempotency_sweep(),
                p.notify(),
                p.notify_live(),
                p.ring(Lane::Bulk),
                p.lanes(),
                p.weights(),
                p.paused_sources(),
                p.paused_kinds(),
                p.source("batch_1"),
                p.limit_slot(Limit::Iot),
                p.cooldown(),
            ] {
                assert!(key.starts_with("onboard:{iot}:"), "{key}");
            }
        }
        assert_eq!(
            QueueKeys::new(JobKind::CreateAccount).ready(Lane::Bulk, "batch_1"),
            "onboard:{tencentcloud}:create-account:ready:bulk:batch_1"
        );
    }

    #[test]
    fn source_names_are_safe_in_keys() {
        assert_eq!(source_name("token:app-1"), "token:app-1");
        assert_eq!(source_name("a b|c"), "a_b_c");
        assert_eq!(source_name(""), "default");
        assert_eq!(source_name(&"x".repeat(100)).len(), 64);
    }
}
