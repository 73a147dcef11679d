//! Enqueue one job from a Rust app and wait for its result.
//!
//! With a worker and the sandbox running (e.g. from `onboard-producer demo`'s printout, or
//! docker-compose), point it at the same Redis:
//!
//! ```text
//! ONBOARD_PROFILE=sandbox ONBOARD_REDIS_URL=redis://127.0.0.1:6379/ \
//!     cargo run -p onboard-producer --example enqueue_and_wait -- my_customer_1 13800000001
//! ```

use onboard_producer::Producer;
use onboard_shared::config::Config;
use onboard_shared::jobs::{CreateCustomerJob, Job};
use onboard_shared::queue::EnqueueOptions;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let customer_id = args.next().unwrap_or_else(|| "example_customer".into());
    let phone_number = args.next().unwrap_or_else(|| "13800000001".into());

    // Defaults, then $ONBOARD_CONFIG's TOML file, then ONBOARD_* variables.
    let cfg = Config::load(
        std::env::var_os("ONBOARD_CONFIG")
            .as_deref()
            .map(std::path::Path::new),
    )?;
    let producer = Producer::connect(&cfg).await?;

    let job = Job::CreateCustomer(CreateCustomerJob {
        customer_id: customer_id.clone(),
        country_code: "86".into(),
        phone_number,
    });
    // The idempotency key makes a rerun of this program return the first job instead of
    // creating a second one.
    let options = EnqueueOptions {
        idempotency_key: Some(format!("create-customer:{customer_id}")),
        ..EnqueueOptions::default()
    };
    let enqueued = producer.enqueue(&job, &options).await?;
    println!(
        "job {} ({})",
        enqueued.id,
        if enqueued.duplicate {
            "already enqueued earlier"
        } else {
            "new"
        }
    );

    // Follows the events stream; no polling.
    let status = producer.wait(&enqueued.id, Duration::from_secs(60)).await?;
    println!("state: {:?}", status.state);
    if let Some(err) = status.last_error {
        println!("last error: {} {}: {}", err.class, err.code, err.message);
    }
    if let Some(result) = status.result {
        println!("result: {result}");
    }
    Ok(())
}
