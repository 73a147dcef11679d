//! `register-user`: POLYV add-custom-user, reconciled with get-custom-user when an earlier
//! attempt's outcome is unknown (an uncertain add answered "already registered" looks again
//! before it believes the answer, as in `create_customer`). The returned appSecret is a
//! secret: it is stored encrypted and shown only on request.

use super::Runner;
use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::jobs::RegisterUserJob;
use onboard_shared::providers::polyv::{errors, PolyvUser};
use onboard_shared::queue::ClaimedJob;
use onboard_shared::ProviderError;
use serde_json::json;

fn result(user: &PolyvUser, reconciled: bool) -> JobOutcome {
    JobOutcome::Succeeded(json!({
        "app_id": user.app_id,
        "user_id": user.user_id,
        "name": user.name,
        "app_secret": user.app_secret.expose(),
        "reconciled": reconciled,
    }))
}

pub(super) async fn run(
    runner: &Runner,
    claimed: &ClaimedJob,
    job: &RegisterUserJob,
) -> Result<JobOutcome, JobFailure> {
    if claimed.uncertain {
        if let Some(user) = runner.polyv.get_custom_user(&job.email).await? {
            return Ok(result(&user, true));
        }
    }
    match runner.polyv.add_custom_user(job).await {
        Ok(user) => Ok(result(&user, false)),
        Err(e) if claimed.uncertain && errors::is_already_exists(&e) => {
            match runner.polyv.get_custom_user(&job.email).await? {
                Some(user) => Ok(result(&user, true)),
                None => Err(JobFailure::Provider(ProviderError::transient(
                    "AlreadyExistsNotVisible",
                    "the provider says the user exists but does not show it yet",
                ))),
            }
        }
        Err(e) => Err(e.into()),
    }
}
