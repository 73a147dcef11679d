//! One module per scenario; each starts its own redis-server and returns a [`Record`].

pub mod console;
pub mod drain_sandbox;
pub mod drain_stub;
pub mod enqueue;
pub mod fairness;
pub mod http;
pub mod memory;
pub mod pickup;
pub mod ratelimit;
pub mod scale;

use crate::report::Record;
use onboard_shared::jobs::{CreateCustomerJob, RegisterUserJob};
use onboard_shared::secret::Secret;

/// Create-customer job `i`, the payload both we and the peer enqueue and drain.
pub fn customer_payload(i: usize) -> CreateCustomerJob {
    CreateCustomerJob {
        customer_id: format!("c{i}"),
        country_code: "86".into(),
        phone_number: format!("1380000{:04}", i % 10_000),
    }
}

/// Register-user job `i` (POLYV), for the scenarios that drain two providers.
pub fn user_payload(i: usize) -> RegisterUserJob {
    RegisterUserJob {
        email: format!("user{i}@example.com"),
        mobile: format!("138{:08}", i % 100_000_000),
        passwd: Secret::new("secret-pass-1"),
        name: None,
        industry: None,
        sale_id: None,
    }
}

/// The scenarios, in the order `all` runs them.
pub const ALL: [&str; 10] = [
    "enqueue",
    "drain-stub",
    "drain-sandbox",
    "pickup",
    "ratelimit",
    "fairness",
    "memory",
    "scale",
    "http",
    "console",
];

/// Runs scenario `name`.
pub async fn run(name: &str, quick: bool) -> anyhow::Result<Record> {
    match name {
        "enqueue" => enqueue::run(quick).await,
        "drain-stub" => drain_stub::run(quick).await,
        "drain-sandbox" => drain_sandbox::run(quick).await,
        "pickup" => pickup::run(quick).await,
        "ratelimit" => ratelimit::run(quick).await,
        "fairness" => fairness::run(quick).await,
        "memory" => memory::run(quick).await,
        "scale" => scale::run(quick).await,
        "http" => http::run(quick).await,
        "console" => console::run(quick).await,
        other => anyhow::bail!("unknown scenario {other}"),
    }
}
