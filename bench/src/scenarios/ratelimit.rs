//! `ratelimit`: three `onboard-worker` processes sharing one Redis and one global limit,
//! against the sandbox WITH its rate limiter on (violations counted), in three rounds:
//!
//! * CreateAccount at 5/s: create-account jobs, each one request (it texts a code, then the
//!   job waits for the code);
//! * IoT at 20/s: create-customer jobs, each one ServiceCreateCustomer;
//! * IoT at 20/s with lanes in play: a bulk backlog of create-customer jobs while live ones
//!   arrive a few a second.
//!
//! Each round enqueues more jobs than its run time can take, and after the run time the
//! sandbox's `max_per_second` and violations tell whether the limit held, and
//! `requests / seconds / limit` how much of it was used.

use crate::harness::{self, Sandbox};
use crate::report::{round, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, JobStore, Lane};
use onboard_tests::fixtures::{account, customer};
use std::time::{Duration, Instant};

const WORKERS: usize = 3;
/// The share of the limit each round must use.
const TARGET_SHARE: f64 = 0.99;
/// Live jobs a second in the lanes round.
const LIVE_PER_SEC: u64 = 4;

/// One round: a limit, the sandbox action that counts against it, and the work offered.
struct Round {
    name: &'static str,
    /// The worker's setting for the limit (`ONBOARD_LIMITS__<this>`).
    setting: &'static str,
    limit: f64,
    /// The sandbox's name of the action counted.
    action: &'static str,
    /// The jobs' kind.
    kind: JobKind,
    /// Jobs enqueued at the start.
    jobs: Vec<(Job, EnqueueOptions)>,
    /// Whether live jobs arrive during the run, beside the (bulk) jobs enqueued at the start.
    live: bool,
}

/// What a round measured.
struct Measured {
    requests: u64,
    violations: u64,
    max_per_second: u64,
    share: f64,
    live_requests: u64,
    /// Jobs whose request went through: succeeded, or (create-account) awaiting the code.
    jobs_through: u64,
}

fn rounds(run_for: Duration) -> Vec<Round> {
    let secs = run_for.as_secs() as usize;
    let bulk = EnqueueOptions {
        lane: Some(Lane::Bulk),
        source: Some("bench-backfill".into()),
        ..Default::default()
    };
    // IoT at 20/s, twice as many create-customer jobs as the run can take, in `options`' lane.
    let iot = |name, first: usize, options: &EnqueueOptions, live| Round {
        name,
        setting: "IOT",
        limit: 20.0,
        action: "ServiceCreateCustomer",
        kind: JobKind::CreateCustomer,
        jobs: (0..secs * 20 * 2)
            .map(|i| (customer(first + i), options.clone()))
            .collect(),
        live,
    };
    vec![
        Round {
            name: "create_account_5",
            setting: "CREATE_ACCOUNT",
            limit: 5.0,
            action: "CreateAccount",
            kind: JobKind::CreateAccount,
            jobs: (0..secs * 5 * 2)
                .map(|i| (account(i), EnqueueOptions::default()))
                .collect(),
            live: false,
        },
        iot("iot_20", 0, &EnqueueOptions::default(), false),
        iot("iot_20_lanes", 100_000, &bulk, true),
    ]
}

/// Enqueues live jobs at [`LIVE_PER_SEC`] until `until`; returns how many.
async fn live_arrivals(store: JobStore, until: Instant) -> anyhow::Result<u64> {
    let mut tick = tokio::time::interval(Duration::from_millis(1_000 / LIVE_PER_SEC));
    let mut n = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        store
            .enqueue(&customer(500_000 + n as usize), &EnqueueOptions::default())
            .await?;
        n += 1;
    }
    Ok(n)
}

async fn measure(round: &Round, run_for: Duration) -> anyhow::Result<Measured> {
    let redis = harness::start_redis().await?;
    let sandbox = Sandbox::start(true).await?;
    let store = harness::store(&redis).await?;
    let mut env = harness::worker_env(&redis, Some(sandbox.url()));
    env.push((
        format!("ONBOARD_LIMITS__{}", round.setting),
        round.limit.to_string(),
    ));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(
            harness::start_worker(&env)
                .await
                .context("start onboard-worker")?,
        );
    }
    let start = Instant::now();
    store.enqueue_many(&round.jobs).await?;
    let live = round
        .live
        .then(|| tokio::spawn(live_arrivals(store.clone(), start + run_for)));
    tokio::time::sleep(run_for.saturating_sub(start.elapsed())).await;
    let stats = sandbox.stats().await?;
    let secs = start.elapsed().as_secs_f64();
    let counts = harness::counts(&store, round.kind).await?;
    let live_requests = match live {
        Some(task) => task.await.context("live arrivals")??,
        None => 0,
    };
    drop(workers);

    let counters = &stats["actions"][round.action];
    let num = |k: &str| counters[k].as_u64();
    let (Some(requests), Some(violations), Some(max_per_second)) = (
        num("requests"),
        num("rate_limit_violations"),
        num("max_per_second"),
    ) else {
        bail!(
            "the sandbox stats have no {} counters: {stats}",
            round.action
        );
    };
    Ok(Measured {
        requests,
        violations,
        max_per_second,
        share: requests as f64 / secs / round.limit,
        live_requests,
        jobs_through: counts.succeeded + counts.awaiting_code,
    })
}

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let run_for = Duration::from_secs(if quick { 10 } else { 60 });
    for (job, _) in rounds(run_for).iter().flat_map(|r| r.jobs.first()) {
        onboard_shared::validation::Validate::validate(job)
            .map_err(|e| anyhow::anyhow!("bench job is invalid: {e}"))?;
    }

    let mut rec = RecordBuilder::new("ratelimit", quick);
    rec.figure("workers", WORKERS as u64)
        .figure("run_secs", run_for.as_secs());
    let mut lowest_share = f64::INFINITY;
    let mut limits_held = true;
    let mut parts = Vec::new();
    for r in rounds(run_for) {
        let m = measure(&r, run_for).await?;
        let n = r.name;
        rec.figure(&format!("{n}_requests"), m.requests)
            .figure(&format!("{n}_rate_limit_violations"), m.violations)
            .figure(&format!("{n}_max_per_second"), m.max_per_second)
            .figure(&format!("{n}_jobs_through"), m.jobs_through)
            .figure(&format!("{n}_share_of_limit"), round(m.share, 4));
        if r.live {
            rec.figure(&format!("{n}_live_jobs_enqueued"), m.live_requests);
        }
        lowest_share = lowest_share.min(m.share);
        limits_held &= m.max_per_second as f64 <= r.limit && m.violations == 0;
        parts.push(format!(
            "{} {}/s{}: {} requests, max {}/s, {} violations, {:.1} %",
            r.action,
            r.limit,
            if r.live { " live+bulk" } else { "" },
            m.requests,
            m.max_per_second,
            m.violations,
            m.share * 100.0
        ));
    }
    rec.note("share = sandbox requests / run seconds / limit, the run timed from the enqueue; max_per_second is the sandbox's busiest wall-clock second; each round has its own Redis and sandbox");
    let target = Target::new(
        "lowest share_of_limit over the rounds (and max_per_second <= limit, no violations)",
        ">=",
        TARGET_SHARE,
        "3 workers at 5/s and at 20/s (also live + bulk) never exceed the limit in any second and use >= 99 % of it",
    );
    let summary = format!(
        "{WORKERS} workers, {} s each: {}",
        run_for.as_secs(),
        parts.join("; ")
    );
    Ok(rec.finish(
        target,
        lowest_share,
        limits_held,
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
