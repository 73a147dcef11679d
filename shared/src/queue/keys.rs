//! Key names and job ids.
//!
//! Every key of one queue starts with `onboard:{<kind>}:`; the braces are a Redis Cluster
//! hash tag, so all of a queue's keys live in one slot and each Lua script touches one slot.
//! Job ids are `<prefix>_<ULID>` (`cust_01J...`): they sort by creation time within a kind,
//! and the prefix says which queue holds the job, so `status(id)` needs no index.

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

    /// The FIFO list of due job ids.
    pub fn ready(&self) -> String {
        format!("{}ready", self.prefix)
    }

    /// The list idle workers block on; every enqueue pushes a wake-up token.
    pub fn notify(&self) -> String {
        format!("{}notify", self.prefix)
    }

    /// A named sorted set of the queue (`scheduled`, `leased`, `dead`, `awaiting`, `waiting`).
    pub fn set(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// The record of one job.
    pub fn job(&self, id: &str) -> String {
        format!("{}job:{}", self.prefix, id)
    }

    /// Payloads and metadata of jobs enqueued in bulk and not claimed yet (see `pending`).
    pub fn pending(&self) -> String {
        format!("{}pending", self.prefix)
    }

    /// Counters (enqueued, succeeded, dead, expired, leases_expired).
    pub fn counts(&self) -> String {
        format!("{}counts", self.prefix)
    }

    /// The per-queue events stream used in cluster mode.
    pub fn cluster_events(&self) -> String {
        format!("{}events", self.prefix)
    }
}

/// The events stream every state change is written to (single-node Redis).
pub const EVENTS_KEY: &str = "onboard:events";

fn id_prefix(kind: JobKind) -> &'static str {
    match kind {
        JobKind::CreateCustomer => "cust",
        JobKind::BindDevices => "bind",
        JobKind::CreateAccount => "acct",
        JobKind::RegisterUser => "user",
    }
}

/// A new job id for `kind`: `<prefix>_<ULID>`.
pub fn new_job_id(kind: JobKind) -> String {
    format!("{}_{}", id_prefix(kind), ulid::Ulid::new())
}

/// The kind a job id belongs to, or `None` when the id is not one of ours.
pub fn kind_of_id(id: &str) -> Option<JobKind> {
    let (prefix, rest) = id.split_once('_')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    JobKind::ALL.into_iter().find(|k| id_prefix(*k) == prefix)
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
            k.set("dead"),
            k.job("x"),
            k.counts(),
            k.pending(),
        ] {
            assert!(key.starts_with("onboard:{create-account}:"), "{key}");
        }
    }

    #[test]
    fn ids_name_their_queue_and_sort_by_time() {
        for kind in JobKind::ALL {
            let a = new_job_id(kind);
            std::thread::sleep(std::time::Duration::from_millis(2));
            let b = new_job_id(kind);
            assert_eq!(kind_of_id(&a), Some(kind));
            assert!(a < b, "{a} < {b}");
        }
        assert_eq!(kind_of_id("nope"), None);
        assert_eq!(kind_of_id("cust_"), None);
        assert_eq!(kind_of_id("cust_a:b"), None);
        assert_eq!(kind_of_id("zzz_01J"), None);
    }
}
