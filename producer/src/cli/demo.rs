//! `demo`: the whole thing end to end on this machine, from nothing but the toolchain and
//! `redis-server`.
//!
//! Starts a private redis-server on a free port (or uses `ONBOARD_REDIS_URL`), the sandbox
//! and a worker; enqueues the sample backfill (`producer/examples/mixed.jsonl`, all four job
//! kinds plus a customer with devices), reads the create-account codes from the sandbox's
//! SMS inbox and supplies them, shows progress, and ends with a table of states and the
//! metrics address. Ctrl-C stops everything it started.

use super::{Ctx, Failure};
use clap::Args;
use onboard_producer::backfill::{read_rows, FileFormat, RowItem};
use onboard_producer::Producer;
use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::Job;
use onboard_shared::queue::{EnqueueOptions, JobState, JobStatus};
use onboard_shared::secret::Secret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SAMPLE: &str = include_str!("../../examples/mixed.jsonl");

/// `demo` arguments.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Stop everything as soon as the summary is printed (instead of waiting for Ctrl-C).
    #[arg(long)]
    exit_when_done: bool,
}

/// A child process killed when dropped.
struct Started {
    name: &'static str,
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

fn sibling(name: &str) -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::infra(format!("own path: {e}")))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = dir.join(name);
    // Under `cargo run`, (re)build the other binaries the same way, so a stale binary from
    // an older checkout is never started; cargo makes this a no-op when they are current.
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut cmd = std::process::Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "onboard-worker",
            "-p",
            "onboard-sandbox",
        ]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let built = cmd.status().map(|s| s.success()).unwrap_or(false);
        if !built {
            return Err(Failure::infra(format!(
                "building {name} failed (see above)"
            )));
        }
    }
    if path.exists() {
        return Ok(path);
    }
    Err(Failure::infra(format!(
        "{name} not found next to {}: build it with `cargo build --release --workspace`",
        exe.display()
    )))
}

/// Starts `cmd` and waits for a stdout line containing `marker`; returns the line.
async fn start(
    name: &'static str,
    mut cmd: Command,
    marker: &str,
    dir: Option<tempfile::TempDir>,
) -> Result<(Started, String), Failure> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::infra(format!("cannot start {name}: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::infra(format!("{name}: no stdout")))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(marker) {
                return Some(line);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| {
        Failure::infra(format!(
            "{name} did not start (no {marker:?} line within 30 s)"
        ))
    })?;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((
        Started {
            name,
            child,
            _dir: dir,
        },
        line,
    ))
}

async fn start_redis() -> Result<(Started, String), Failure> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::infra(format!("no free port: {e}")))?;
    let dir = tempfile::tempdir().map_err(|e| Failure::infra(format!("temp dir: {e}")))?;
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        "",
    ])
    .arg("--dir")
    .arg(dir.path());
    let (started, _) = start(
        "redis-server",
        cmd,
        "Ready to accept connections",
        Some(dir),
    )
    .await
    .map_err(|e| {
        Failure::infra(format!(
            "{} (is redis-server installed? `apt-get install redis-server`)",
            e.message
        ))
    })?;
    Ok((started, format!("redis://127.0.0.1:{port}/")))
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
    let mut started: Vec<Started> = Vec::new();
    let result = tokio::select! {
        r = run_stack(&args, &mut started) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted");
            Ok(())
        }
    };
    for s in started.iter_mut() {
        let _ = s.child.start_kill();
        let _ = s.child.wait().await;
        eprintln!("stopped {}", s.name);
    }
    result
}

async fn run_stack(args: &DemoArgs, started: &mut Vec<Started>) -> Result<(), Failure> {
    let sandbox_bin = sibling("onboard-sandbox")?;
    let worker_bin = sibling("onboard-worker")?;

    let redis_url = match std::env::var("ONBOARD_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            eprintln!("using Redis at ONBOARD_REDIS_URL");
            url
        }
        _ => {
            let (redis, url) = start_redis().await?;
            started.push(redis);
            eprintln!("started a private redis-server at {url}");
            url
        }
    };

    let mut cmd = Command::new(&sandbox_bin);
    cmd.args(["--listen", "127.0.0.1:0"]);
    let (sandbox, line) = start("onboard-sandbox", cmd, "listening on", None).await?;
    started.push(sandbox);
    let sandbox_url = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    eprintln!("started the sandbox providers at {sandbox_url}");

    let mut cmd = Command::new(&worker_bin);
    cmd.env("ONBOARD_PROFILE", "sandbox")
        .env("ONBOARD_REDIS_URL", &redis_url)
        .env("ONBOARD_METRICS_LISTEN", metrics_listen())
        .envs(Config::sandbox_provider_env(&sandbox_url));
    let (worker, line) = start("onboard-worker", cmd, "onboard-worker ready", None).await?;
    started.push(worker);
    let metrics_url = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    eprintln!("started a worker; metrics at {metrics_url}");

    let producer = Producer::connect(&Config {
        profile: Profile::Sandbox,
        redis_url: redis_url.clone(),
        ..Config::default()
    })
    .await?;

    // Enqueue the sample: plain jobs and customers with their devices (bind after create).
    let mut ids: Vec<(String, Option<String>)> = Vec::new(); // (job id, phone for codes)
    for row in read_rows(SAMPLE.as_bytes(), FileFormat::JsonLines, None) {
        let row =
            row.map_err(|e| Failure::infra(format!("the built-in sample is invalid: {e}")))?;
        match row.item {
            RowItem::Job(job) => {
                let phone = match &job {
                    Job::CreateAccount(a) => Some(format!("{}{}", a.country_code, a.phone_num)),
                    _ => None,
                };
                let e = producer.enqueue(&job, &EnqueueOptions::default()).await?;
                ids.push((e.id, phone));
            }
            RowItem::OnboardCustomer { customer, devices } => {
                let parent = producer
                    .enqueue(&Job::CreateCustomer(customer), &EnqueueOptions::default())
                    .await?;
                let child = producer
                    .enqueue(
                        &Job::BindDevices(devices),
                        &EnqueueOptions {
                            depends_on: Some(parent.id.clone()),
                            ..Default::default()
                        },
                    )
                    .await?;
                ids.push((parent.id, None));
                ids.push((child.id, None));
            }
        }
    }
    eprintln!("enqueued {} jobs of all four kinds", ids.len());

    // Follow them; hand each create-account job the code the sandbox "texted".
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut statuses: Vec<JobStatus>;
    let mut supplied = std::collections::HashSet::new();
    loop {
        statuses = Vec::with_capacity(ids.len());
        for (id, _) in &ids {
            statuses.push(producer.status(id, false).await?);
        }
        for (s, (id, phone)) in statuses.iter().zip(&ids) {
            if s.state == JobState::AwaitingCode && !supplied.contains(id) {
                if let Some(phone) = phone {
                    let inbox: serde_json::Value = client
                        .get(format!("{sandbox_url}/_sandbox/sms?phone={phone}"))
                        .send()
                        .await
                        .map_err(|e| Failure::infra(format!("sandbox inbox: {e}")))?
                        .json()
                        .await
                        .map_err(|e| Failure::infra(format!("sandbox inbox: {e}")))?;
                    if let Some(code) = inbox["latest"].as_str() {
                        producer.supply_code(id, &Secret::new(code)).await?;
                        supplied.insert(id.clone());
                        eprintln!("{id}: supplied the code from the sandbox inbox");
                    }
                }
            }
        }
        let counts = count(&statuses);
        eprintln!(
            "progress: {}",
            counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if statuses.iter().all(|s| s.state.is_final()) || Instant::now() > deadline {
            break;
        }
        // Wake on the next state change rather than on a timer.
        let _ = producer
            .wait_until(&first_open(&statuses), Duration::from_secs(2), |s| {
                s.state.is_final() || s.state == JobState::AwaitingCode
            })
            .await;
    }

    println!();
    println!(
        "{:<30} {:<16} {:<16} {:>8}  result",
        "job", "kind", "state", "attempts"
    );
    for s in &statuses {
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
    let counts = count(&statuses);
    println!(
        "states: {}",
        counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("metrics: {metrics_url}");
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

fn count(statuses: &[JobStatus]) -> BTreeMap<&'static str, usize> {
    statuses.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.state.as_str()).or_default() += 1;
        m
    })
}

fn first_open(statuses: &[JobStatus]) -> String {
    statuses
        .iter()
        .find(|s| !s.state.is_final() && s.state != JobState::AwaitingCode)
        .or_else(|| statuses.iter().find(|s| !s.state.is_final()))
        .map(|s| s.id.clone())
        .unwrap_or_default()
}
