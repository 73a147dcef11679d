//! What an app or a backfill row asks for: one job, or a customer to onboard (create the
//! customer, then bind its devices). [`crate::Producer::enqueue_work`] turns each into its
//! jobs, so the split lives in one place.

use onboard_shared::jobs::{BindDevicesJob, CreateCustomerJob, Job};
use onboard_shared::queue::{EnqueueOptions, Lane};

/// One unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// One job.
    Job(Job),
    /// Create the customer, then bind its devices (`devices.customer_id == customer.customer_id`).
    OnboardCustomer {
        /// The `create-customer` job.
        customer: CreateCustomerJob,
        /// The `bind-devices` job, to run after the customer exists.
        devices: BindDevicesJob,
    },
}

/// How [`crate::Producer::enqueue_work`] keys the jobs it enqueues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkKeys {
    /// No idempotency keys: every call enqueues new jobs.
    #[default]
    None,
    /// Each job's key is its kind and natural key (`create-customer:<customer id>`), so
    /// enqueuing the same work again (a rerun of a backfill) enqueues nothing new.
    NaturalKey,
}

impl WorkKeys {
    /// The idempotency key of `job`.
    pub(crate) fn key_of(self, job: &Job) -> Option<String> {
        match self {
            WorkKeys::None => None,
            WorkKeys::NaturalKey => Some(format!("{}:{}", job.kind(), job.natural_key())),
        }
    }
}

/// How [`crate::Producer::enqueue_work`] enqueues: the keys, the lane (bulk unless said) and
/// the source (a backfill's batch id, an app's name) the jobs share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkOptions {
    /// The idempotency keys.
    pub keys: WorkKeys,
    /// The lane; `None` is bulk.
    pub lane: Option<Lane>,
    /// The source; `None` is `default`.
    pub source: Option<String>,
}

impl WorkOptions {
    /// The options a job is enqueued with.
    pub(crate) fn options(&self, job: &Job, depends_on: Option<String>) -> EnqueueOptions {
        EnqueueOptions {
            idempotency_key: self.keys.key_of(job),
            depends_on,
            lane: self.lane,
            source: self.source.clone(),
            ..Default::default()
        }
    }
}

/// What enqueuing one [`Work`] did: one answer per job, parent first.
pub type WorkEnqueued = Vec<onboard_shared::queue::Enqueued>;
