//! Provider API clients: one module per provider, each with its signer, its client and its
//! error mapping side by side.
//!
//! Every request goes through a [`RequestGate`] first. The worker plugs the Redis-side
//! global rate limiter in there, so reconciliation look-ups and page walks are limited like
//! any other call; tests and tools that need no limit use [`OpenGate`].

pub mod iot;
pub mod polyv;
pub mod tencentcloud;

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

/// Counts one provider request and its duration. `code` is `OK`, the provider's error code or
/// a transport label; it never carries request data, so label cardinality stays bounded.
fn record_request(provider: &'static str, action: &'static str, code: &str, elapsed: Duration) {
    metrics::counter!(
        "onboard_provider_requests_total",
        "provider" => provider,
        "action" => action,
        "code" => code.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "onboard_provider_request_duration_seconds",
        "provider" => provider,
        "action" => action
    )
    .record(elapsed.as_secs_f64());
}

/// Runs one provider request: waits for the gate's permit, then sends, then counts the
/// outcome. `send` is lazy, so its timestamp and signature are made after the wait.
pub(crate) async fn metered<T>(
    gate: &Gate,
    provider: &'static str,
    action: &'static str,
    send: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    gate.admit(provider, action).await?;
    let started = std::time::Instant::now();
    let result = send.await;
    let code = match &result {
        Ok(_) => "OK",
        Err(e) => e.code(),
    };
    record_request(provider, action, code, started.elapsed());
    if let Err(e) = &result {
        tracing::debug!(provider, action, code = e.code(), "provider error");
    }
    result
}

/// Reads a response body as JSON. A non-2xx status without a JSON body, or a body that is
/// not JSON, is transient (PROVIDERS.md); a body cut off mid-read is an unknown outcome.
pub(crate) async fn read_json(
    resp: reqwest::Response,
) -> Result<(reqwest::StatusCode, serde_json::Value), ProviderError> {
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| ProviderError::from_transport(&e))?;
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok((status, value)),
        Err(_) if !status.is_success() => Err(ProviderError::transient(
            format!("HttpStatus{}", status.as_u16()),
            format!("HTTP {status} without a JSON body"),
        )),
        Err(e) => Err(ProviderError::transient(
            "BadBody",
            format!("response body is not JSON: {e}"),
        )),
    }
}
