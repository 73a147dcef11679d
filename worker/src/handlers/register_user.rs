//! `register-user`: POLYV add-custom-user, reconciled with get-custom-user when an earlier
//! attempt's outcome is unknown. The returned appSecret is a secret: it is stored encrypted
//! and shown only on request.

use super::Runner;
use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::jobs::RegisterUserJob;
use onboard_shared::providers::polyv::PolyvUser;
use onboard_shared::queue::ClaimedJob;
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
    let user = runner.polyv.add_custom_user(job).await?;
    Ok(result(&user, false))
}
