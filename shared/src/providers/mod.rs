//! Provider API clients: one module per provider, each with its signer, its client and its
//! error mapping side by side.
//!
//! Every request goes through a [`RequestGate`] first. The worker plugs the Redis-side
//! global rate limiter in there, so reconciliation look-ups and page walks are limited like
//! any other call; tests and tools that need no limit use [`OpenGate`].

use crate::ProviderError;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// Decides when a request to `provider`/`action` may be sent.
///
/// `admit` resolves when the request may go now. It returns
/// [`ProviderError::Throttled`] when the wait would be too long to sleep through (the job is
/// then rescheduled without using an attempt).
pub trait RequestGate: Send + Sync {
    /// Waits for a permit for one request.
    fn admit<'a>(
        &'a self,
        provider: &'static str,
        action: &'static str,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// A gate that admits every request at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGate;

impl RequestGate for OpenGate {
    fn admit<'a>(
        &'a self,
        _provider: &'static str,
        _action: &'static str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The shared gate handle every client holds.
pub type Gate = Arc<dyn RequestGate>;

/// The one HTTP client all providers share: connection pooling, the configured request
/// timeout, no redirects (a provider that redirects is misconfigured).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        // Building only fails when the TLS backend cannot initialise, which is a broken
        // installation, not a runtime condition.
        .expect("the HTTP client (rustls) initialises")
}
