//! Jobs and settings the end-to-end tests share: valid payloads numbered by `i` (so every
//! natural key is distinct), a connected producer, and worker options for fast retries.

use crate::{wait_all, RedisServer, Sandbox, WorkerOptions};
use onboard_producer::Producer;
use onboard_shared::config::{Config, Profile};
use onboard_shared::jobs::*;
use onboard_shared::queue::{EnqueueOptions, JobState};
use onboard_shared::secret::Secret;

/// A producer on the sandbox profile.
pub async fn producer(redis: &RedisServer) -> Producer {
    let cfg = Config {
        profile: Profile::Sandbox,
        redis_url: redis.url(),
        ..Config::default()
    };
    Producer::connect(&cfg).await.expect("producer connects")
}

/// Fast retries and no provider limits, for tests about something else.
pub fn quick() -> WorkerOptions {
    WorkerOptions::default()
        .env("ONBOARD_QUEUE__BACKOFF_BASE_MS", 20)
        .env("ONBOARD_QUEUE__BACKOFF_CAP_MS", 200)
        .env("ONBOARD_LIMITS__IOT", 0)
        .env("ONBOARD_LIMITS__POLYV", 0)
        .env("ONBOARD_LIMITS__CREATE_ACCOUNT", 0)
        .env("ONBOARD_LIMITS__SEND_VERIFY_CODE", 0)
}

/// `create-customer` number `i`.
pub fn customer(i: usize) -> Job {
    Job::CreateCustomer(CreateCustomerJob {
        customer_id: format!("cust_{i}"),
        country_code: "86".into(),
        phone_number: format!("139{i:08}"),
    })
}

/// `register-user` number `i`.
pub fn user(i: usize) -> Job {
    Job::RegisterUser(RegisterUserJob {
        email: format!("user{i}@example.com"),
        mobile: format!("138{i:08}"),
        passwd: Secret::new("secret-pass-1"),
        name: Some(format!("User {i}")),
        industry: None,
        sale_id: None,
    })
}

/// `create-account` number `i` (phone `852` + `5<i:07>`).
pub fn account(i: usize) -> Job {
    Job::CreateAccount(CreateAccountJob {
        account_type: AccountType::Personal,
        mail: format!("acct{i}@example.com"),
        password: Secret::new("Passw0rd!x"),
        confirm_password: Secret::new("Passw0rd!x"),
        phone_num: format!("5{i:07}"),
        country_code: "852".into(),
        area: "HK".into(),
        extended: None,
        trade_one: None,
        trade_two: None,
    })
}

/// `bind-devices` for customer `i`.
pub fn bind(i: usize) -> Job {
    Job::BindDevices(BindDevicesJob {
        customer_id: format!("cust_{i}"),
        devices: vec![DeviceInfo {
            customer_device_no: format!("dev{i}"),
            device_id: format!("P1/d{i}"),
            product_name: "lamp".into(),
        }],
    })
}

/// Enqueues all of `jobs`, returning their ids in order.
pub async fn enqueue_all(p: &Producer, jobs: Vec<Job>) -> Vec<String> {
    let batch: Vec<_> = jobs
        .into_iter()
        .map(|j| (j, EnqueueOptions::default()))
        .collect();
    p.enqueue_many(&batch)
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Enqueues `customers` customers, `users` users, and a bind-devices child for each of the
/// first `binds` customers; returns the customers' ids and the others'.
pub async fn enqueue_mixed(
    p: &Producer,
    customers: usize,
    users: usize,
    binds: usize,
) -> (Vec<String>, Vec<String>) {
    let mut parents = Vec::new();
    for chunk in (0..customers).collect::<Vec<_>>().chunks(2_000) {
        parents.extend(enqueue_all(p, chunk.iter().map(|i| customer(*i)).collect()).await);
    }
    let mut others = Vec::new();
    for chunk in (0..users).collect::<Vec<_>>().chunks(2_000) {
        others.extend(enqueue_all(p, chunk.iter().map(|i| user(*i)).collect()).await);
    }
    let children: Vec<_> = (0..binds)
        .map(|i| {
            let opts = EnqueueOptions {
                depends_on: Some(parents[i].clone()),
                ..Default::default()
            };
            (bind(i), opts)
        })
        .collect();
    for chunk in children.chunks(2_000) {
        others.extend(
            p.enqueue_many(chunk)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id),
        );
    }
    (parents, others)
}

/// Waits up to five minutes for `ids` to end, then asserts that each succeeded and that the
/// sandbox created `customers` customers and `users` POLYV users, none twice.
pub async fn all_succeeded_each_created_once(
    p: &Producer,
    ids: &[String],
    sandbox: &Sandbox,
    customers: usize,
    users: usize,
) {
    let done = wait_all(p, ids, std::time::Duration::from_secs(300)).await;
    let not_ok: Vec<_> = done
        .iter()
        .filter(|s| s.state != JobState::Succeeded)
        .collect();
    assert!(
        not_ok.is_empty(),
        "{} jobs did not succeed, e.g. {:?}",
        not_ok.len(),
        not_ok.first()
    );
    let stats = sandbox.stats();
    assert_eq!(stats["duplicates"], 0, "nothing created twice");
    assert_eq!(
        stats["creates"]["customers"].as_object().map(|m| m.len()),
        Some(customers)
    );
    assert_eq!(
        stats["creates"]["polyv_users"].as_object().map(|m| m.len()),
        Some(users)
    );
}

/// Runs `onboard-producer <args>` against `redis_url` on the sandbox profile.
pub fn cli(redis_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::bin("onboard-producer"))
        .args(args)
        .env("ONBOARD_PROFILE", "sandbox")
        .env("ONBOARD_REDIS_URL", redis_url)
        .env_remove("ONBOARD_CONFIG")
        .output()
        .expect("run onboard-producer")
}

/// stdout and stderr of a finished command, for assertions and failure messages.
pub fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
