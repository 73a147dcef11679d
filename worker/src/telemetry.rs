//! Logging: `tracing` to stderr, filtered by `ONBOARD_LOG` (default `info`), formatted by
//! `ONBOARD_LOG_FORMAT` (`pretty`, the default, or `json`). Payloads are never logged;
//! phones and e-mails only masked.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init() {
    let filter = EnvFilter::try_from_env("ONBOARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a person at a terminal; in files they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    match std::env::var("ONBOARD_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().init(),
        _ => builder.init(),
    }
}
