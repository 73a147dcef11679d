//! `console`: the operator console's pages (issue 17) under a large backlog, against the
//! target "every page answers in under 200 ms with 1,000,000 queued jobs, and no page runs
//! a Redis command whose cost grows with the queue".
//!
//! A private redis-server is filled through the library, with no worker running: a batch
//! of create-customer jobs, dead letters under a few error codes and create-account jobs
//! awaiting a code (claimed and acknowledged in process), then a tenth of the backlog of
//! create-customer jobs (each keyed `create-customer:<customer id>`, as backfills key
//! them, so the natural-key find has something to find). `onboard-producer serve` starts,
//! the scenario logs in over HTTP (reqwest, the session cookie carried by hand) and times
//! each page 20 times; then the other nine tenths are enqueued and the pages are timed
//! again. Around each round, `INFO commandstats` (every command, those inside scripts
//! too) and `SLOWLOG` at threshold 0 (the arguments of each top-level command) are read,
//! so the record shows what the pages asked Redis, each command's cost at both sizes, and
//! flags whole-collection reads (KEYS, SCAN, HGETALL, SMEMBERS, ...), ranges without a
//! bound, and any command whose cost per call grew with the backlog.

use crate::harness;
use crate::report::{fmt_num, round, Record, RecordBuilder, Target};
use anyhow::{bail, Context};
use onboard_shared::jobs::{Job, JobKind};
use onboard_shared::queue::error_record::ErrorRecord;
use onboard_shared::queue::{Ack, EnqueueOptions, JobStore};
use onboard_shared::ErrorClass;
use onboard_tests::api::{ApiServer, TokenSpec};
use onboard_tests::fixtures::{account, user};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

mod redis_cost;

use redis_cost::{CommandCosts, RangeCheck};

/// The target: every page's p99 under this, at full size.
const PAGE_TARGET_MS: f64 = 200.0;
/// Loads of each page per round.
const RUNS: usize = 20;
/// Jobs per `enqueue_many` call.
const CHUNK: usize = 10_000;
/// Error codes the dead letters are spread over.
const DEAD_CODES: [&str; 3] = ["InternalError", "InvalidParameter", "UserExists"];

/// The backlog and what sits beside it.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Queued create-customer jobs at full size.
    jobs: usize,
    /// Queued create-customer jobs in the first round (a tenth).
    small: usize,
    /// Create-customer jobs of the batch.
    batch: usize,
    /// Dead register-user jobs.
    dead: usize,
    /// Create-account jobs awaiting a code.
    awaiting: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        let jobs = if quick { 50_000 } else { 1_000_000 };
        Sizes {
            jobs,
            small: jobs / 10,
            batch: jobs / 20,
            dead: jobs / 100,
            awaiting: (jobs / 1_000).max(20),
        }
    }
}

/// Customer `c<i>` keyed by its id, as a backfill keys it.
fn keyed_customer(prefix: &str, i: usize, source: Option<&str>) -> (Job, EnqueueOptions) {
    let mut payload = super::customer_payload(i);
    payload.customer_id = format!("{prefix}{i}");
    let opts = EnqueueOptions {
        idempotency_key: Some(format!("create-customer:{}", payload.customer_id)),
        source: source.map(str::to_string),
        ..Default::default()
    };
    (Job::CreateCustomer(payload), opts)
}

/// Enqueues `prefix<i>` for `i` in `range` in chunks; returns the id of `prefix<mark>`.
async fn enqueue_customers(
    store: &JobStore,
    prefix: &str,
    range: std::ops::Range<usize>,
    source: Option<&str>,
    mark: usize,
) -> anyhow::Result<Option<String>> {
    let mut marked = None;
    let ids: Vec<usize> = range.collect();
    for part in ids.chunks(CHUNK) {
        let jobs: Vec<_> = part
            .iter()
            .map(|i| keyed_customer(prefix, *i, source))
            .collect();
        let done = store.enqueue_many(&jobs).await.context("enqueue_many")?;
        if let Some(pos) = part.iter().position(|i| *i == mark) {
            marked = done.get(pos).map(|e| e.id.clone());
        }
    }
    Ok(marked)
}

/// Enqueues `jobs`, claims them all (no worker runs) and acknowledges each with `ack(n)`.
async fn claim_and_ack(
    store: &JobStore,
    kind: JobKind,
    jobs: Vec<Job>,
    ack: impl Fn(usize) -> Ack,
) -> anyhow::Result<()> {
    let want = jobs.len();
    for part in jobs.chunks(CHUNK) {
        let batch: Vec<_> = part
            .iter()
            .map(|j| (j.clone(), EnqueueOptions::default()))
            .collect();
        store.enqueue_many(&batch).await?;
    }
    let mut acked = 0;
    while acked < want {
        let fetched = store.fetch(kind, 500, "bench-console").await?;
        if fetched.jobs.is_empty() {
            bail!("claimed {acked} of {want} {kind} jobs, then nothing");
        }
        for job in fetched.jobs {
            store.ack(kind, &job.id, &job.token, &ack(acked)).await?;
            acked += 1;
        }
    }
    Ok(())
}

/// How long each step took (seconds), also printed as it ends.
#[derive(Debug)]
struct Phases {
    last: Instant,
    done: Vec<(&'static str, f64)>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            last: Instant::now(),
            done: Vec::new(),
        }
    }
}

impl Phases {
    fn done(&mut self, name: &'static str) {
        let secs = self.last.elapsed().as_secs_f64();
        eprintln!("onboard-bench: console: {name} in {secs:.1} s");
        self.done.push((name, round(secs, 2)));
        self.last = Instant::now();
    }

    fn to_json(&self) -> Value {
        Value::Object(
            self.done
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
        )
    }
}

/// One page to time: its name, path and the status it answers with.
struct PageLoad {
    name: &'static str,
    path: String,
    status: u16,
}

/// The pages, with the ids they name.
fn pages(batch: &str, job: &str, find: &str) -> Vec<PageLoad> {
    let page = |name, path: String, status| PageLoad { name, path, status };
    vec![
        page("overview", "/console".into(), 200),
        page("jobs", "/console/jobs".into(), 200),
        page(
            "jobs_by_state",
            "/console/jobs?kind=register-user&state=dead".into(),
            200,
        ),
        page(
            "jobs_by_batch",
            format!("/console/jobs?kind=create-customer&batch={batch}"),
            200,
        ),
        page("job", format!("/console/jobs/{job}"), 200),
        page("find", format!("/console/find?q={find}"), 303),
        page("dead", "/console/dead".into(), 200),
        page("batches", "/console/batches".into(), 200),
        page("awaiting", "/console/awaiting".into(), 200),
    ]
}

/// p50, p99 and max of one page's loads, in ms.
#[derive(Debug, Clone, Copy)]
struct Timing {
    p50: f64,
    p99: f64,
    max: f64,
}

fn timing(mut took: Vec<Duration>) -> Timing {
    took.sort();
    let at = |p: f64| {
        let i = ((took.len() as f64 * p).ceil() as usize).clamp(1, took.len());
        took[i - 1].as_secs_f64() * 1000.0
    };
    Timing {
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// A logged-in console client.
struct Console {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Console {
    /// `POST /console/login` with `token`: 303 and the session cookie.
    async fn log_in(base: &str, token: &str) -> anyhow::Result<Console> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let resp = http
            .post(format!("{base}/console/login"))
            .form(&[("token", token)])
            .send()
            .await
            .context("POST /console/login")?;
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("onboard_console="))
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        match (resp.status().as_u16(), cookie) {
            (303, Some(cookie)) => Ok(Console {
                http,
                base: base.to_string(),
                cookie,
            }),
            (status, _) => bail!("the console login answered {status} without a session"),
        }
    }

    /// Loads `page` `RUNS` times; fails on any other status than the expected one.
    async fn time(&self, page: &PageLoad) -> anyhow::Result<Timing> {
        let mut took = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let start = Instant::now();
            let resp = self
                .http
                .get(format!("{}{}", self.base, page.path))
                .header("Cookie", format!("onboard_console={}", self.cookie))
                .send()
                .await
                .with_context(|| format!("GET {}", page.path))?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await?;
            took.push(start.elapsed());
            if status != page.status {
                bail!(
                    "GET {} answered {status}, not {}: {}",
                    page.path,
                    page.status,
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
            }
        }
        Ok(timing(took))
    }
}

/// One round: every page's timing, and what Redis ran meanwhile.
struct Round {
    timings: Vec<(&'static str, Timing)>,
    costs: CommandCosts,
    ranges: RangeCheck,
}

async fn measure_round(
    console: &Console,
    pages: &[PageLoad],
    redis: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<Round> {
    let before = redis_cost::start(redis).await?;
    let mut timings = Vec::new();
    for page in pages {
        timings.push((page.name, console.time(page).await?));
    }
    let (costs, ranges) = redis_cost::finish(redis, &before).await?;
    Ok(Round {
        timings,
        costs,
        ranges,
    })
}

/// Runs the scenario.
pub async fn run(quick: bool) -> anyhow::Result<Record> {
    let wall = Instant::now();
    let sizes = Sizes::new(quick);
    let redis = harness::start_redis().await?;
    let store = harness::store(&redis).await?;
    let mut admin = redis_cost::connect(&redis.url()).await?;

    // Beside the backlog: a batch, dead letters, jobs awaiting a code.
    let mut phases = Phases::default();
    let batch = store.create_batch("bench-console").await?;
    enqueue_customers(&store, "b", 0..sizes.batch, Some(&batch), 0).await?;
    phases.done("batch");
    let dead: Vec<Job> = (0..sizes.dead).map(user).collect();
    claim_and_ack(&store, JobKind::RegisterUser, dead, |n| {
        let code = DEAD_CODES[n % DEAD_CODES.len()];
        Ack::Dead(ErrorRecord::new(
            ErrorClass::Permanent,
            code,
            "refused (bench)",
        ))
    })
    .await?;
    phases.done("dead_letters");
    let awaiting: Vec<Job> = (0..sizes.awaiting).map(account).collect();
    claim_and_ack(&store, JobKind::CreateAccount, awaiting, |_| {
        Ack::AwaitCode {
            code_lifetime_ms: 3_600_000,
            masked_phone: "*******1234".into(),
        }
    })
    .await?;
    phases.done("awaiting_code");
    // The first tenth of the backlog; customer `c<mark>` is the one looked at.
    let mark = sizes.small / 2;
    let job = enqueue_customers(&store, "c", 0..sizes.small, None, mark)
        .await?
        .context("the marked job's id")?;
    phases.done("first_tenth");

    let token = TokenSpec::new("bench-ops", "operator");
    let extra = "rate_per_sec = 1000000\nburst = 1000000";
    let server = tokio::task::block_in_place(|| {
        ApiServer::start(&redis, std::slice::from_ref(&token), extra)
    });
    let console = Console::log_in(server.url(), &token.token).await?;
    let pages = pages(&batch, &job, &format!("c{mark}"));
    phases.done("server_and_login");
    let small = measure_round(&console, &pages, &mut admin).await?;
    phases.done("first_round");

    enqueue_customers(&store, "c", sizes.small..sizes.jobs, None, usize::MAX).await?;
    let queued = store.queue_stats(JobKind::CreateCustomer).await?.queued;
    if queued < sizes.jobs as u64 {
        bail!("{queued} create-customer jobs queued, not {}", sizes.jobs);
    }
    phases.done("rest_of_backlog");
    let full = measure_round(&console, &pages, &mut admin).await?;
    phases.done("full_round");
    drop(server);

    report(quick, sizes, &small, &full, &phases, wall)
}

/// The record: per-page timings at both sizes, the commands, the verdict.
fn report(
    quick: bool,
    sizes: Sizes,
    small: &Round,
    full: &Round,
    phases: &Phases,
    wall: Instant,
) -> anyhow::Result<Record> {
    let mut rec = RecordBuilder::new("console", quick);
    rec.figure("queued_jobs", sizes.jobs as u64);
    rec.figure("queued_jobs_first_round", sizes.small as u64);
    rec.figure("batch_jobs", sizes.batch as u64);
    rec.figure("dead_letters", sizes.dead as u64);
    rec.figure("awaiting_code", sizes.awaiting as u64);
    rec.figure("loads_per_page", RUNS as u64);
    rec.figure("phase_secs", phases.to_json());
    let mut pages = serde_json::Map::new();
    let mut worst = (0.0f64, "");
    let mut parts = Vec::new();
    for ((name, t), (_, s)) in full.timings.iter().zip(&small.timings) {
        pages.insert(
            name.to_string(),
            json!({
                "p50_ms": round(t.p50, 2), "p99_ms": round(t.p99, 2), "max_ms": round(t.max, 2),
                "first_round": {"p50_ms": round(s.p50, 2), "p99_ms": round(s.p99, 2), "max_ms": round(s.max, 2)},
            }),
        );
        if t.p99 > worst.0 {
            worst = (t.p99, name);
        }
        parts.push(format!("{name} {:.1}/{:.1}/{:.1}", t.p50, t.p99, t.max));
    }
    rec.figure("pages", Value::Object(pages));
    let growth = redis_cost::compare(&small.costs, &full.costs);
    rec.figure("commands", redis_cost::to_json(&growth));
    let flagged = redis_cost::flags(&growth, &full.ranges);
    rec.figure("flagged", json!(flagged));
    rec.figure("top_level_commands_checked", full.ranges.checked);
    let slowest_calls: Vec<Value> = full
        .ranges
        .slowest(8)
        .into_iter()
        .map(|(shape, calls, mean, max)| {
            let first = small
                .ranges
                .durations
                .get(&shape)
                .map(|(c, t, _)| *t as f64 / *c as f64);
            json!({"command": shape, "calls": calls, "mean_us": round(mean, 1), "max_us": max,
                   "first_round_mean_us": first.map(|f| round(f, 1))})
        })
        .collect();
    let slowest_call = slowest_calls.first().cloned().unwrap_or_default();
    rec.figure("slowest_top_level_calls", Value::Array(slowest_calls));
    let slowest = growth
        .iter()
        .max_by(|a, b| a.full.usec_per_call.total_cmp(&b.full.usec_per_call))
        .map(|c| {
            format!(
                "{} {:.2} us/call ({} calls; first round {:.2})",
                c.name, c.full.usec_per_call, c.full.calls, c.small.usec_per_call
            )
        })
        .unwrap_or_default();
    rec.figure("slowest_command", slowest.clone());
    let grown: Vec<&str> = growth
        .iter()
        .filter(|c| c.grew())
        .map(|c| c.name.as_str())
        .collect();
    rec.note("each page loaded 20 times in a row over one keep-alive connection, logged in with an operator session (reqwest, cookie by hand); find answers 303 to the job and is timed to that answer");
    rec.note("commands: INFO commandstats deltas over each round (commands inside scripts counted too) at a tenth of the backlog and at full size; top-level arguments from SLOWLOG at threshold 0 (ranges with stop -1 or over 1,000 items, BYSCORE without LIMIT, XRANGE without COUNT are flagged); a command 'grew' when its usec_per_call rose over 3x and by over 10 us");
    rec.note(
        "no worker runs; the API server and redis-server share the machine's cores with the client",
    );
    let target = Target::new(
        "worst_page_p99_ms",
        "<",
        PAGE_TARGET_MS,
        "every console page under 200 ms with 1,000,000 queued jobs, no command growing with the queue",
    );
    let summary = format!(
        "{} queued jobs (+{} in a batch, {} dead, {} awaiting a code), ms p50/p99/max: {}; slowest command {slowest}; slowest top-level call {} {} us mean ({} us first round); grew with the backlog: {}; flagged: {}",
        fmt_num(sizes.jobs as f64),
        fmt_num(sizes.batch as f64),
        fmt_num(sizes.dead as f64),
        sizes.awaiting,
        parts.join(", "),
        slowest_call["command"].as_str().unwrap_or("-"),
        slowest_call["mean_us"],
        slowest_call["first_round_mean_us"],
        if grown.is_empty() { "none".to_string() } else { grown.join(", ") },
        if flagged.is_empty() { "none".to_string() } else { flagged.join("; ") },
    );
    rec.figure("worst_page", worst.1);
    Ok(rec.finish(
        target,
        worst.0,
        grown.is_empty(),
        summary,
        wall.elapsed().as_secs_f64(),
    ))
}
