//! `create-customer`: ServiceCreateCustomer, reconciled with ServiceGetCustomerList when an
//! earlier attempt's outcome is unknown (so a retry never creates the customer twice).
//!
//! The look-up can lose a race: the earlier attempt may reach the provider after it (or the
//! provider's reads may lag). So an uncertain create answered "already exists" looks again
//! before it believes the answer: our own customer is a success, not a dead job.

use super::Runner;
use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::jobs::CreateCustomerJob;
use onboard_shared::providers::iot::errors;
use onboard_shared::queue::{ClaimedJob, ErrorRecord};
use onboard_shared::ErrorClass;
use onboard_shared::ProviderError;
use serde_json::json;

pub(super) async fn run(
    runner: &Runner,
    claimed: &ClaimedJob,
    job: &CreateCustomerJob,
) -> Result<JobOutcome, JobFailure> {
    if claimed.uncertain {
        if let Some(outcome) = reconcile(runner, job).await? {
            return Ok(outcome);
        }
    }
    match runner.iot.create_customer(job).await {
        Ok(()) => Ok(JobOutcome::Succeeded(json!({"status": "OK"}))),
        Err(e) if claimed.uncertain && errors::is_already_exists(&e) => {
            match reconcile(runner, job).await? {
                Some(outcome) => Ok(outcome),
                // It exists but does not show yet: look again on the next attempt.
                None => Err(JobFailure::Provider(ProviderError::transient(
                    "AlreadyExistsNotVisible",
                    "the provider says the customer exists but does not list it yet",
                ))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Looks the customer up: our own (same phone) is a success, someone else's a conflict,
/// none is `None`.
async fn reconcile(
    runner: &Runner,
    job: &CreateCustomerJob,
) -> Result<Option<JobOutcome>, JobFailure> {
    let Some(found) = runner.iot.find_customer(&job.customer_id).await? else {
        return Ok(None);
    };
    if found.phone_number == job.phone_number && found.country_code == job.country_code {
        return Ok(Some(JobOutcome::Succeeded(
            json!({"status": "OK", "reconciled": true}),
        )));
    }
    Err(JobFailure::Dead(ErrorRecord::new(
        ErrorClass::Permanent,
        "CustomerConflict",
        "a customer with this id already exists with a different phone",
    )))
}
