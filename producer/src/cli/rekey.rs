//! `rekey`: re-encrypts everything resting in Redis with the first key of
//! `ONBOARD_ENCRYPTION_KEY`, so the keys after it can be dropped from the configuration.
//!
//! Rotation, step by step: put the new key first and the old one after it
//! (`ONBOARD_ENCRYPTION_KEY=new,old`) in every worker and producer; run `rekey`; then
//! configure the new key alone.

use super::{Ctx, Failure};

/// Runs `rekey`.
pub async fn run(ctx: &Ctx) -> Result<(), Failure> {
    let producer = ctx.producer().await?;
    let report = producer.store().rekey().await?;
    ctx.print(&report, || {
        let mut out = format!(
            "re-encrypted {} value(s) with the first key; {} already were",
            report.resealed, report.current
        );
        if report.changed_meanwhile > 0 {
            out.push_str(&format!(
                "\n{} value(s) changed meanwhile: run rekey again",
                report.changed_meanwhile
            ));
        }
        if report.unreadable > 0 {
            out.push_str(&format!(
                "\n{} value(s) open with no configured key (corrupted): left as they are",
                report.unreadable
            ));
        }
        out.push_str(if report.old_keys_released {
            "\nthe other keys are no longer needed: configure the first key alone"
        } else {
            "\nkeep the other keys configured for now"
        });
        out
    });
    if report.old_keys_released {
        Ok(())
    } else {
        Err(Failure::infra(
            "not every value could be re-encrypted (see above)",
        ))
    }
}
