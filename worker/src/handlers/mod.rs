//! Job handlers: what one attempt of each job kind does against its provider.
//!
//! [`Runner`] holds the provider clients (all behind the Redis-side rate-limit gate, which
//! also pauses a provider that throttles) and dispatches a claimed job to the handler of
//! its kind. Handlers return a
//! [`JobOutcome`] or a [`JobFailure`]; the queue's acknowledgement layer turns that into
//! the job's next state, so handlers never touch the queue themselves.

mod bind_devices;
mod create_account;
mod create_customer;
mod register_user;
mod slot_gate;

use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::config::Config;
use onboard_shared::jobs::Job;
use onboard_shared::providers::iot::IotClient;
use onboard_shared::providers::polyv::PolyvClient;
use onboard_shared::providers::tencentcloud::TencentCloudClient;
use onboard_shared::providers::{http_client, Gate};
use onboard_shared::queue::ClaimedJob;
use onboard_shared::ratelimit::RedisGate;
use slot_gate::SlotGate;
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler needs; one per worker process, shared by all jobs (behind an
/// `Arc`: see the launcher).
pub struct Runner {
    iot: IotClient,
    tencentcloud: TencentCloudClient,
    polyv: PolyvClient,
    gate: Gate,
    cfg: Arc<Config>,
}

impl Runner {
    /// Builds the provider clients over one shared HTTP client and the global gate.
    pub fn new(cfg: &Config, gate: Arc<RedisGate>) -> anyhow::Result<Runner> {
        if cfg.stub_providers && cfg.profile != onboard_shared::config::Profile::Sandbox {
            anyhow::bail!("stub_providers is for benchmarks and needs the sandbox profile");
        }
        let http = http_client(Duration::from_millis(cfg.http_timeout_ms));
        let shared_gate: Gate = gate;
        let gate = shared_gate.clone();
        Ok(Runner {
            iot: IotClient::new(&cfg.iot, http.clone(), shared_gate.clone()),
            tencentcloud: TencentCloudClient::new(
                &cfg.tencentcloud,
                http.clone(),
                shared_gate.clone(),
            )
            .map_err(|e| anyhow::anyhow!("tencentcloud endpoint: {e}"))?,
            polyv: PolyvClient::new(&cfg.polyv, http, shared_gate),
            gate,
            cfg: Arc::new(cfg.clone()),
        })
    }

    /// Runs one attempt of a claimed job. When its claim reserved a request slot, its
    /// clients go through a gate holding that slot.
    pub async fn run(&self, claimed: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
        if self.cfg.stub_providers {
            return Ok(JobOutcome::Succeeded(serde_json::json!({"stub": true})));
        }
        let runner = match claimed.slot {
            Some(slot) => &self.with_gate(Arc::new(SlotGate::new(self.gate.clone(), slot))),
            None => self,
        };
        match &claimed.job {
            Job::CreateCustomer(job) => create_customer::run(runner, claimed, job).await,
            Job::BindDevices(job) => bind_devices::run(runner, job).await,
            Job::CreateAccount(job) => create_account::run(runner, claimed, job).await,
            Job::RegisterUser(job) => register_user::run(runner, claimed, job).await,
        }
    }

    /// The same clients, their requests through `gate`.
    fn with_gate(&self, gate: Gate) -> Runner {
        Runner {
            iot: self.iot.with_gate(gate.clone()),
            tencentcloud: self.tencentcloud.with_gate(gate.clone()),
            polyv: self.polyv.with_gate(gate.clone()),
            gate,
            cfg: self.cfg.clone(),
        }
    }
}
