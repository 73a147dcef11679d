//! Key names: each a method, so no code spells a key by hand.
//!
//! Every key of one queue starts with `onboard:{<kind>}:`; the braces are a Redis Cluster
//! hash tag, so all of a queue's keys live in one slot and each Lua script touches one slot.
//! The scripts get the prefix and build the same names (see `scripts/common.lua`).

use crate::jobs::JobKind;

/// The Redis keys of one queue.
#[derive(Debug, Clone)]
pub struct QueueKeys {
    kind: JobKind,
    prefix: String,
}

impl QueueKeys {
    /// Keys of the queue for `kind`.
    pub fn new(kind: JobKind) -> Self {
        QueueKeys {
            kind,
            prefix: format!("onboard:{{{}}}:", kind.as_str()),
        }
    }

    /// The kind this queue holds.
    pub fn kind(&self) -> JobKind {
        self.kind
    }

    /// `onboard:{<kind>}:`, handed to every script.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// List: due job ids, FIFO.
    pub fn ready(&self) -> String {
        self.key("ready")
    }

    /// List idle workers block on; every enqueue pushes a wake-up token.
    pub fn notify(&self) -> String {
        self.key("notify")
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

    /// Hash: counters (enqueued, succeeded, dead, expired, leases_expired).
    pub fn counts(&self) -> String {
        self.key("counts")
    }

    /// String: an idempotency key (already hashed) → `<first job's id>|<payload digest>`
    /// (see `enqueue.lua`; keys written before digests hold the id alone).
    pub fn idempotency(&self, hashed: &str) -> String {
        self.key(&format!("idem:{hashed}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = QueueKeys::new(JobKind::CreateAccount);
        for key in [
            k.ready(),
            k.notify(),
            k.scheduled(),
            k.leased(),
            k.dead(),
            k.awaiting(),
            k.waiting(),
            k.job("x"),
            k.counts(),
            k.pending(),
            k.idempotency("ab"),
        ] {
            assert!(key.starts_with("onboard:{create-account}:"), "{key}");
        }
    }
}
