//! `create-account`: Tencent Cloud CreateAccount in two phases.
//!
//! Phase 1 asks the provider to text a code (CreateAccount with an empty VerifyCode, or
//! SendVerifyCode, by configuration) and suspends the job in `awaiting_code`, holding no
//! worker. Phase 2 runs once a code is supplied. CreateAccount has no look-up, so an
//! "already registered" answer after an attempt whose outcome is unknown cannot be told
//! apart from our own earlier success: the job ends dead saying the effect is uncertain.

use super::Runner;
use crate::runtime::{JobFailure, JobOutcome};
use onboard_shared::config::VerifyCodeMode;
use onboard_shared::jobs::CreateAccountJob;
use onboard_shared::providers::tencentcloud::CreateAccountOutcome;
use onboard_shared::queue::{ClaimedJob, CodePhase, ErrorRecord};
use onboard_shared::secret::mask_phone;
use onboard_shared::ErrorClass;
use onboard_shared::ProviderError;
use serde_json::json;

pub(super) async fn run(
    runner: &Runner,
    claimed: &ClaimedJob,
    job: &CreateAccountJob,
) -> Result<JobOutcome, JobFailure> {
    let code = match (claimed.phase, &claimed.verify_code) {
        (CodePhase::Verify, Some(code)) => code,
        _ => return send_code(runner, job).await,
    };
    match runner.tencentcloud.create_account(job, Some(code)).await {
        Ok(CreateAccountOutcome::Created { uin }) => {
            Ok(JobOutcome::Succeeded(json!({ "uin": uin })))
        }
        Ok(CreateAccountOutcome::CodeSent) => Err(JobFailure::Provider(ProviderError::transient(
            "NoUin",
            "CreateAccount with a code answered neither Uin nor an error",
        ))),
        Err(ProviderError::Permanent { code, message })
            if claimed.uncertain && code == "FailedOperation.MailIsRegistered" =>
        {
            Err(JobFailure::Dead(ErrorRecord::new(
                ErrorClass::Permanent,
                "EffectUncertain",
                format!(
                    "effect uncertain: an earlier attempt may have created it ({code}: {message})"
                ),
            )))
        }
        Err(e) => Err(e.into()),
    }
}

async fn send_code(runner: &Runner, job: &CreateAccountJob) -> Result<JobOutcome, JobFailure> {
    match runner.cfg.tencentcloud.verify_code_mode {
        VerifyCodeMode::Inline => match runner.tencentcloud.create_account(job, None).await? {
            CreateAccountOutcome::CodeSent => {}
            // A provider that creates without a code (allowlisted callers) is done at once.
            CreateAccountOutcome::Created { uin } => {
                return Ok(JobOutcome::Succeeded(json!({ "uin": uin })))
            }
        },
        VerifyCodeMode::SendVerifyCode => {
            runner
                .tencentcloud
                .send_verify_code(&job.country_code, &job.phone_num)
                .await?
        }
    }
    Ok(JobOutcome::AwaitingCode {
        masked_phone: mask_phone(&format!("{}{}", job.country_code, job.phone_num)),
    })
}
