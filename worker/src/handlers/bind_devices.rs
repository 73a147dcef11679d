//! `bind-devices`: ServiceBindDevice, all of a customer's devices in one request. Pushing the
//! same relation twice is harmless (PROVIDERS.md), so a retry needs no reconciliation.

use super::Runner;
use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::jobs::BindDevicesJob;
use serde_json::json;

pub(super) async fn run(runner: &Runner, job: &BindDevicesJob) -> Result<JobOutcome, JobFailure> {
    runner.iot.bind_devices(job).await?;
    Ok(JobOutcome::Succeeded(
        json!({"status": "OK", "devices": job.devices.len()}),
    ))
}
