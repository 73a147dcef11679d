//! Verify codes of `create-account` jobs: supplying one (at most once), sending a job back
//! through phase 1 for a new one, and expiring jobs whose deadline passed.

use super::dependencies::ParentOutcome;
use super::{refused, JobStore, QueueError, Unconfirmed};
use crate::jobs::JobKind;
use crate::queue::keys::QueueKeys;
use crate::queue::replies::{self, ExpiredReply};
use crate::queue::scripts;
use crate::secret::Secret;

impl JobStore {
    /// Supplies the verify code to a job awaiting one; it resumes at most once. A code
    /// supplied while phase 1 is still finishing is kept and used when it ends.
    pub async fn supply_code(&self, id: &str, code: &Secret) -> Result<(), QueueError> {
        let well_formed =
            code.expose().len() == 6 && code.expose().bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(QueueError::BadCode);
        }
        let keys = self.keys_for(id)?;
        let mut inv = self.script(&scripts::SUPPLY_CODE, &keys);
        inv.arg(id)
            .arg(self.cipher.seal(code.expose().as_bytes()))
            .arg(self.cfg.queue.code_lifetime_secs.saturating_mul(1000));
        let verdict = replies::done(&self.run_durable(inv, Unconfirmed::Fail).await?)?;
        refused(id, verdict, "not awaiting a code")
    }

    /// Sends an `expired` or `awaiting_code` job back through phase 1 (a new code).
    pub async fn resend_code(&self, id: &str) -> Result<(), QueueError> {
        let keys = self.keys_for(id)?;
        let mut inv = self.script(&scripts::RESEND_CODE, &keys);
        inv.arg(id);
        let verdict = replies::done(&self.run_list(inv).await?)?;
        refused(
            id,
            verdict,
            "only an expired or awaiting_code job can be sent a new code",
        )
    }

    /// Moves jobs whose code deadline passed to `expired`, and fails the jobs that waited
    /// on them; returns how many expired. The one place jobs expire.
    pub async fn expire_codes(&self, kind: JobKind) -> Result<u64, QueueError> {
        let mut inv = self.script(&scripts::EXPIRE_CODES, &QueueKeys::new(kind));
        inv.arg(self.cfg.queue.retention_secs.max(1));
        let reply = ExpiredReply::decode(&self.run_list(inv).await?)?;
        self.resolve_children(
            &reply.dependents,
            &ParentOutcome::Failed("its parent expired".into()),
        )
        .await?;
        Ok(reply.count)
    }
}
