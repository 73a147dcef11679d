//! Commands that read or nudge existing jobs: status, wait, events, stats, dead letters,
//! verify codes, and the IoT customer list.

use super::{Ctx, Failure};
use clap::{Args, Subcommand};
use onboard_producer::{EventFollower, ProducerError};
use onboard_shared::jobs::JobKind;
use onboard_shared::providers::http_client;
use onboard_shared::providers::iot::{CustomerFilter, CustomerQuery, IotClient};
use onboard_shared::queue::JobStatus;
use onboard_shared::ratelimit::RedisGate;
use onboard_shared::secret::Secret;
use std::sync::Arc;
use std::time::Duration;

fn describe(s: &JobStatus) -> String {
    let mut out = format!(
        "{}  {}  {}  attempts {}/{}",
        s.id, s.kind, s.state, s.attempts, s.max_attempts
    );
    if s.throttles > 0 {
        out.push_str(&format!("  throttled {}x", s.throttles));
    }
    if let Some(parent) = &s.depends_on {
        out.push_str(&format!("  depends on {parent}"));
    }
    if let Some(e) = &s.last_error {
        out.push_str(&format!(
            "\n  last error [{}] {}: {}",
            e.class, e.code, e.message
        ));
    }
    if let Some(r) = &s.result {
        out.push_str(&format!("\n  result {r}"));
    }
    out
}

/// `status`.
pub async fn status(ctx: &Ctx, id: &str, show_secrets: bool) -> Result<(), Failure> {
    let s = ctx.producer().await?.status(id, show_secrets).await?;
    ctx.print(&s, || describe(&s));
    Ok(())
}

/// `wait`.
pub async fn wait(ctx: &Ctx, id: &str, timeout: u64) -> Result<(), Failure> {
    let p = ctx.producer().await?;
    match p.wait(id, Duration::from_secs(timeout)).await {
        Ok(s) => {
            ctx.print(&s, || describe(&s));
            Ok(())
        }
        Err(ProducerError::Timeout { status, .. }) => {
            ctx.print(&status, || describe(&status));
            Err(Failure::timeout(format!("timed out after {timeout} s")))
        }
        Err(e) => Err(e.into()),
    }
}

/// True for an events stream id `--from` accepts: `$`, `<ms>` or `<ms>-<seq>`.
fn is_stream_id(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s == "$"
        || match s.split_once('-') {
            Some((ms, seq)) => digits(ms) && digits(seq),
            None => digits(s),
        }
}

/// `events`.
pub async fn events(ctx: &Ctx, follow: bool, from: &str) -> Result<(), Failure> {
    // A malformed id is the caller's mistake (exit 1), not Redis failing (exit 2).
    if !is_stream_id(from) {
        return Err(Failure::invalid(format!(
            "--from {from:?}: expected an events stream id (0, $, <ms> or <ms>-<seq>)"
        )));
    }
    let p = ctx.producer().await?;
    let mut follower = EventFollower::from_id(p.store(), from).await?;
    loop {
        let batch = follower
            .next_batch(Duration::from_millis(if follow { 1000 } else { 1 }))
            .await?;
        if batch.is_empty() && !follow {
            return Ok(());
        }
        for e in batch {
            ctx.print(&e, || {
                let mut line = format!(
                    "{}  {}  {}  {}",
                    e.stream_id,
                    e.kind,
                    e.job_id,
                    e.state.as_str()
                );
                if let Some(reason) = &e.reason {
                    line.push_str(&format!("  reason={reason}"));
                }
                if let Some(error) = &e.error {
                    line.push_str(&format!("  error={}", error.to_json()));
                }
                if let Some(phone) = &e.phone {
                    line.push_str(&format!("  phone={phone}"));
                }
                if let Some(attempt) = e.attempt {
                    line.push_str(&format!("  attempt={attempt}"));
                }
                line
            });
        }
    }
}

/// `stats`.
pub async fn stats(ctx: &Ctx) -> Result<(), Failure> {
    let stats = ctx.producer().await?.stats().await?;
    ctx.print(&stats, || {
        // Each column as wide as its header.
        let mut out = format!("{:<16}", "kind");
        let Some(first) = stats.first() else {
            return out;
        };
        let lanes = [("live", 0u64), ("bulk", 0)];
        let header = first
            .by_state()
            .into_iter()
            .chain(lanes)
            .chain(first.totals());
        for (c, _) in header {
            out.push_str(&format!("  {c}"));
        }
        out.push_str("  paused");
        for q in &stats {
            out.push_str(&format!("\n{:<16}", q.kind.as_str()));
            let lanes = [("live", q.queued_live), ("bulk", q.queued_bulk)];
            for (c, n) in q.by_state().into_iter().chain(lanes).chain(q.totals()) {
                out.push_str(&format!("  {n:>width$}", width = c.len()));
            }
            out.push_str(if q.paused { "  yes" } else { "  no" });
        }
        out
    });
    Ok(())
}

/// `dead` subcommands.
#[derive(Subcommand, Debug)]
pub enum DeadCommand {
    /// List dead jobs of a kind (all kinds when none is given).
    List {
        #[arg(long)]
        kind: Option<JobKind>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Bring dead jobs back to the queue.
    Retry {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete dead jobs for good.
    Purge {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `dead`.
pub async fn dead(ctx: &Ctx, cmd: DeadCommand) -> Result<(), Failure> {
    let p = ctx.producer().await?;
    match cmd {
        DeadCommand::List { kind, limit } => {
            let kinds: Vec<JobKind> = kind
                .map(|k| vec![k])
                .unwrap_or_else(|| JobKind::ALL.to_vec());
            let mut all = Vec::new();
            for k in kinds {
                all.extend(p.dead_letters(k, limit).await?);
            }
            ctx.print(&all, || {
                if all.is_empty() {
                    "no dead jobs".to_string()
                } else {
                    all.iter().map(describe).collect::<Vec<_>>().join("\n")
                }
            });
        }
        DeadCommand::Retry { ids } => {
            let states = p.retry_dead(&ids).await?;
            let report: Vec<_> = ids
                .iter()
                .zip(&states)
                .map(|(i, s)| (i.clone(), s.as_str()))
                .collect();
            ctx.print(&report, || {
                report
                    .iter()
                    .map(|(i, s)| format!("{i}: {s}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DeadCommand::Purge { ids } => {
            p.purge_dead(&ids).await?;
            ctx.print(&ids, || format!("purged {} job(s)", ids.len()));
        }
    }
    Ok(())
}

/// `verify-code`.
pub async fn verify_code(ctx: &Ctx, id: &str, code: &str) -> Result<(), Failure> {
    let p = ctx.producer().await?;
    p.supply_code(id, &Secret::new(code)).await?;
    ctx.print(
        &serde_json::json!({"job_id": id, "state": "queued"}),
        || format!("{id}: code accepted; the job is queued to create the account"),
    );
    Ok(())
}

/// `resend-code`.
pub async fn resend_code(ctx: &Ctx, id: &str) -> Result<(), Failure> {
    ctx.producer().await?.resend_code(id).await?;
    ctx.print(
        &serde_json::json!({"job_id": id, "state": "queued"}),
        || format!("{id}: queued to text a new code"),
    );
    Ok(())
}

/// `customers` arguments.
#[derive(Args, Debug)]
pub struct CustomersArgs {
    /// Only this customer.
    #[arg(long)]
    customer_id: Option<String>,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// First row (0-based).
    #[arg(long, default_value_t = 0)]
    offset: u32,
}

/// `customers`: one page of ServiceGetCustomerList.
pub async fn customers(ctx: &Ctx, args: CustomersArgs) -> Result<(), Failure> {
    let http = http_client(Duration::from_millis(ctx.cfg.http_timeout_ms));
    // Through the global rate gate like every worker request: the provider's limit is
    // shared by everyone calling it.
    let producer = ctx.producer().await?;
    let gate = RedisGate::new(
        producer.store().connection(),
        ctx.cfg.limits.clone(),
        Duration::from_millis(ctx.cfg.queue.max_inline_wait_ms),
    );
    let client = IotClient::new(&ctx.cfg.iot, http, Arc::new(gate));
    let page = client
        .get_customer_list(&CustomerQuery {
            filter: CustomerFilter {
                customer_id: args.customer_id,
                country_code: None,
                phone_number: None,
            },
            offset: args.offset,
            limit: args.limit,
        })
        .await
        .map_err(|e| Failure::infra(format!("ServiceGetCustomerList: {e}")))?;
    ctx.print(&page.customers, || {
        let mut out = format!(
            "{} customer(s) in all; showing {} from offset {}",
            page.total,
            page.customers.len(),
            args.offset
        );
        for c in &page.customers {
            out.push_str(&format!(
                "\n{}  +{} {}",
                c.customer_id,
                c.country_code,
                onboard_shared::secret::mask_phone(&c.phone_number)
            ));
        }
        out
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        for ok in ["0", "$", "1700000000000", "1700000000000-3", "0-0"] {
            assert!(is_stream_id(ok), "{ok}");
        }
        for bad in ["", "garbage", "-", "1-", "-1", "1-2-3", "1.5", "$$"] {
            assert!(!is_stream_id(bad), "{bad}");
        }
    }
}
