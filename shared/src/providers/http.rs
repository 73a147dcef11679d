//! What the provider clients send requests with (feature `http`, on by default; an app
//! that only enqueues, through the producer library, builds without it and so without
//! reqwest): the one shared HTTP client, the metered request and the JSON reader.

use super::{Action, Gate};
use crate::{ProviderError, ThrottledBy};
use std::time::Duration;

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
fn record_request(action: Action, code: &str, elapsed: Duration) {
    metrics::counter!(
        "onboard_provider_requests_total",
        "provider" => action.provider.as_str(),
        "action" => action.name,
        "code" => code.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "onboard_provider_request_duration_seconds",
        "provider" => action.provider.as_str(),
        "action" => action.name
    )
    .record(elapsed.as_secs_f64());
}

/// Runs one provider request: waits for the gate's permit, then sends, then counts the
/// outcome. `send` is lazy, so its timestamp and signature are made after the wait. When
/// the provider itself throttles (not a per-phone rule), the provider is paused for every
/// worker: this is where its answer was classified, so this is where it is acted on.
pub(crate) async fn metered<T>(
    gate: &Gate,
    action: Action,
    send: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    gate.admit(action).await?;
    let started = std::time::Instant::now();
    let result = send.await;
    let code = match &result {
        Ok(_) => "OK",
        Err(e) => e.code(),
    };
    record_request(action, code, started.elapsed());
    if let Err(e) = &result {
        tracing::debug!(provider = %action.provider, action = action.name, code = e.code(), "provider error");
        if let ProviderError::Throttled {
            by: ThrottledBy::Provider,
            retry_after,
            ..
        } = e
        {
            gate.cool_down(action.provider, *retry_after).await;
        }
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
