//! `create-customer`: ServiceCreateCustomer, reconciled with ServiceGetCustomerList when an
//! earlier attempt's outcome is unknown (so a retry never creates the customer twice).

use super::Runner;
use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::jobs::CreateCustomerJob;
use onboard_shared::queue::{ClaimedJob, ErrorRecord};
use onboard_shared::ErrorClass;
use serde_json::json;

pub(super) async fn run(
    runner: &Runner,
    claimed: &ClaimedJob,
    job: &CreateCustomerJob,
) -> Result<JobOutcome, JobFailure> {
    if claimed.uncertain {
        if let Some(found) = runner.iot.find_customer(&job.customer_id).await? {
            if found.phone_number == job.phone_number && found.country_code == job.country_code {
                return Ok(JobOutcome::Succeeded(
                    json!({"status": "OK", "reconciled": true}),
                ));
            }
            return Err(JobFailure::Dead(ErrorRecord::new(
                ErrorClass::Permanent,
                "CustomerConflict",
                "a customer with this id already exists with a different phone",
            )));
        }
    }
    runner.iot.create_customer(job).await?;
    Ok(JobOutcome::Succeeded(json!({"status": "OK"})))
}
