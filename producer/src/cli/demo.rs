//! `demo`: the whole thing end to end on this machine, from nothing but the toolchain and
//! `redis-server`.
//!
//! Starts a private redis-server on a free port (or uses `ONBOARD_REDIS_URL`), the sandbox
//! and a worker (through `onboard-harness`, as the tests do); enqueues the sample backfill
//! (`producer/examples/mixed.jsonl`, all four job kinds plus a customer with devices),
//! follows the jobs, reads each create-account code from the sandbox's SMS inbox and
//! supplies it, and ends with a table of states, the metrics address and the HTTP API it
//! serves in process (`serve`, with a new operator token, and its console at `/console`).
//! Ctrl-C stops everything it started.

use super::{Ctx, Failure};
use clap::Args;
use onboard_harness::{RedisServer, SandboxProcess, WorkerProcess};
use onboard_producer::backfill::{read_rows, FileFormat};
use onboard_producer::{Producer, WorkKeys, WorkOptions};
use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::Job;
use onboard_shared::queue::{JobState, JobStatus, Lane};
use onboard_shared::secret::Secret;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const SAMPLE: &str = include_str!("../../examples/mixed.jsonl");

/// `demo` arguments.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Stop everything as soon as the summary is printed (instead of waiting for Ctrl-C).
    #[arg(long)]
    exit_when_done: bool,
}

/// What the demo started; each is stopped when dropped.
#[derive(Default)]
struct Started {
    redis: Option<RedisServer>,
    sandbox: Option<SandboxProcess>,
    worker: Option<WorkerProcess>,
}

impl Started {
    fn stop(&mut self) {
        for (name, stopped) in [
            ("onboard-worker", self.worker.take().is_some()),
            ("onboard-sandbox", self.sandbox.take().is_some()),
            ("redis-server", self.redis.take().is_some()),
        ] {
            if stopped {
                eprintln!("stopped {name}");
            }
        }
    }
}

fn metrics_listen() -> String {
    // The documented default, unless something already listens there.
    match std::net::TcpListener::bind("127.0.0.1:9464") {
        Ok(_) => "127.0.0.1:9464".into(),
        Err(_) => "127.0.0.1:0".into(),
    }
}

/// Runs `demo`.
pub async fn run(_ctx: &Ctx, args: DemoArgs) -> Result<(), Failure> {
    let mut started = Started::default();
    let result = tokio::select! {
        r = run_stack(&args, &mut started) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted");
            Ok(())
        }
    };
    started.stop();
    result
}

/// Runs blocking start-up work (spawning a process and waiting for its ready line).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, onboard_harness::HarnessError> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::infra(format!("start-up task: {e}")))?
        .map_err(|e| Failure::infra(e.to_string()))
}

async fn run_stack(args: &DemoArgs, started: &mut Started) -> Result<(), Failure> {
    let redis_url = match std::env::var("ONBOARD_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            eprintln!("using Redis at ONBOARD_REDIS_URL");
            url
        }
        _ => {
            let redis = blocking(|| Ok(RedisServer::start())).await?;
            let url = redis.url();
            started.redis = Some(redis);
            eprintln!("started a private redis-server at {url}");
            url
        }
    };
    let sandbox = blocking(|| SandboxProcess::start(&[])).await?;
    let sandbox_url = sandbox.url.clone();
    started.sandbox = Some(sandbox);
    eprintln!("started the sandbox providers at {sandbox_url}");

    let mut env = onboard_harness::worker_env(&redis_url, Some(&sandbox_url));
    env.push(("ONBOARD_METRICS_LISTEN".into(), metrics_listen()));
    let worker = blocking(move || WorkerProcess::start(&env)).await?;
    let metrics_url = worker.metrics_url.clone();
    started.worker = Some(worker);
    eprintln!("started a worker; metrics at {metrics_url}");

    let cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis_url.clone(),
        ..Config::default()
    };
    let producer = Producer::connect(&cfg).await?;
    let (api_url, api_token) = crate::serve::spawn_in_process(&cfg, producer.clone()).await?;
    eprintln!("serving the HTTP API at {api_url}");

    // Enqueue the sample: plain jobs and customers with their devices (bind after create).
    let mut work = Vec::new();
    for row in read_rows(SAMPLE.as_bytes(), FileFormat::JsonLines, None) {
        let row =
            row.map_err(|e| Failure::infra(format!("the built-in sample is invalid: {e}")))?;
        work.push(row.item);
    }
    // The phone each create-account job's code goes to, by position in `work`.
    let phones: Vec<Option<String>> = work
        .iter()
        .map(|w| match w {
            onboard_producer::Work::Job(Job::CreateAccount(a)) => {
                Some(format!("{}{}", a.country_code, a.phone_num))
            }
            _ => None,
        })
        .collect();
    // A small backfill of one source, in the bulk lane and keyed by natural key like any
    // backfill (so the console finds each job by its customer id, mail or e-mail).
    let options = WorkOptions {
        keys: WorkKeys::NaturalKey,
        lane: Some(Lane::Bulk),
        source: Some("demo".into()),
    };
    let enqueued = producer.enqueue_work(work, &options).await?;
    let mut ids = Vec::new();
    let mut code_phones: HashMap<String, String> = HashMap::new();
    for (jobs, phone) in enqueued.iter().zip(phones) {
        for e in jobs {
            ids.push(e.id.clone());
        }
        if let (Some(phone), Some(first)) = (phone, jobs.first()) {
            code_phones.insert(first.id.clone(), phone);
        }
    }
    eprintln!("enqueued {} jobs of all four kinds", ids.len());

    // Follow them; hand each create-account job the code the sandbox "texted".
    let client = reqwest::Client::new();
    let mut jobs = producer.follow(&ids).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut last_line = String::new();
    loop {
        let awaiting: Vec<String> = jobs
            .states()
            .iter()
            .filter(|(_, s)| **s == JobState::AwaitingCode)
            .map(|(id, _)| id.clone())
            .collect();
        for id in awaiting {
            if let Some(phone) = code_phones.remove(&id) {
                let code = sms_code(&client, &sandbox_url, &phone).await?;
                producer.supply_code(&id, &Secret::new(code)).await?;
                eprintln!("{id}: supplied the code from the sandbox inbox");
            }
        }
        let line = progress(&jobs.counts());
        if line != last_line {
            eprintln!("progress: {line}");
            last_line = line;
        }
        let all_final = jobs.states().values().all(|s| s.is_final());
        if all_final || std::time::Instant::now() > deadline {
            break;
        }
        jobs.next_changes(Duration::from_secs(1)).await?;
    }
    let statuses = jobs.statuses(&ids).await?;
    print_table(&statuses);
    println!("metrics: {metrics_url}");
    println!(
        "HTTP API: {api_url} (operator token {api_token}; try curl -H 'Authorization: Bearer {api_token}' {api_url}/v1/stats)"
    );
    let login = crate::serve::console::login_link::create(
        &producer.store().connection(),
        crate::serve::DEMO_TOKEN_NAME,
    )
    .await
    .map_err(|e| Failure::infra(format!("cannot store the console's login link: {e}")))?;
    println!(
        "console: {api_url}/console/login?once={login} (a one-time login link; afterwards log in with the operator token above, made for this run and ending with it)"
    );
    if !statuses.iter().all(|s| s.state == JobState::Succeeded) {
        return Err(Failure::infra(
            "not every demo job succeeded (see the table above)",
        ));
    }
    if !args.exit_when_done {
        println!("everything is still running; press Ctrl-C to stop it");
        std::future::pending::<()>().await;
    }
    Ok(())
}

/// The latest code the sandbox texted to `phone`.
async fn sms_code(client: &reqwest::Client, sandbox: &str, phone: &str) -> Result<String, Failure> {
    let inbox: serde_json::Value = client
        .get(format!("{sandbox}/_sandbox/sms?phone={phone}"))
        .send()
        .await
        .map_err(|e| Failure::infra(format!("sandbox inbox: {e}")))?
        .json()
        .await
        .map_err(|e| Failure::infra(format!("sandbox inbox: {e}")))?;
    inbox["latest"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::infra("the sandbox texted no code"))
}

fn progress(counts: &BTreeMap<JobState, usize>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_table(statuses: &[JobStatus]) {
    println!();
    println!(
        "{:<30} {:<16} {:<16} {:>8}  result",
        "job", "kind", "state", "attempts"
    );
    for s in statuses {
        let result = s.result.as_ref().map(|r| r.to_string()).unwrap_or_default();
        println!(
            "{:<30} {:<16} {:<16} {:>8}  {}",
            s.id,
            s.kind.as_str(),
            s.state.as_str(),
            s.attempts,
            result
        );
    }
    println!();
    let counts = statuses.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.state).or_default() += 1;
        m
    });
    println!("states: {}", progress(&counts));
}
