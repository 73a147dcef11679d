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

use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::config::Config;
use onboard_shared::jobs::Job;
use onboard_shared::providers::iot::IotClient;
use onboard_shared::providers::polyv::PolyvClient;
use onboard_shared::providers::tencentcloud::TencentCloudClient;
use onboard_shared::providers::{http_client, Gate};
use onboard_shared::queue::ClaimedJob;
use onboard_shared::ratelimit::RedisGate;
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler needs; one per worker process, shared by all jobs.
#[derive(Clone)]
pub struct Runner {
    iot: IotClient,
    tencentcloud: TencentCloudClient,
    polyv: PolyvClient,
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
        Ok(Runner {
            iot: IotClient::new(&cfg.iot, http.clone(), shared_gate.clone()),
            tencentcloud: TencentCloudClient::new(
                &cfg.tencentcloud,
                http.clone(),
                shared_gate.clone(),
            )
            .map_err(|e| anyhow::anyhow!("tencentcloud endpoint: {e}"))?,
            polyv: PolyvClient::new(&cfg.polyv, http, shared_gate),
            cfg: Arc::new(cfg.clone()),
        })
    }

    /// Runs one attempt of a claimed job.
    pub async fn run(&self, claimed: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
        if self.cfg.stub_providers {
            return Ok(JobOutcome::Succeeded(serde_json::json!({"stub": true})));
        }
        match &claimed.job {
            Job::CreateCustomer(job) => create_customer::run(self, claimed, job).await,
            Job::BindDevices(job) => bind_devices::run(self, job).await,
            Job::CreateAccount(job) => create_account::run(self, claimed, job).await,
            Job::RegisterUser(job) => register_user::run(self, claimed, job).await,
        }
    }
}
