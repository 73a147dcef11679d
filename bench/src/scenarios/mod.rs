//! One module per scenario; each starts its own redis-server and returns a [`Record`].

pub mod drain_sandbox;
pub mod drain_stub;
pub mod enqueue;
pub mod memory;
pub mod pickup;
pub mod ratelimit;

use crate::report::Record;

/// The scenarios, in the order `all` runs them.
pub const ALL: [&str; 6] = [
    "enqueue",
    "drain-stub",
    "drain-sandbox",
    "pickup",
    "ratelimit",
    "memory",
];

/// Runs scenario `name`.
pub async fn run(name: &str, quick: bool) -> anyhow::Result<Record> {
    match name {
        "enqueue" => enqueue::run(quick).await,
        "drain-stub" => drain_stub::run(quick).await,
        "drain-sandbox" => drain_sandbox::run(quick).await,
        "pickup" => pickup::run(quick).await,
        "ratelimit" => ratelimit::run(quick).await,
        "memory" => memory::run(quick).await,
        other => anyhow::bail!("unknown scenario {other}"),
    }
}
