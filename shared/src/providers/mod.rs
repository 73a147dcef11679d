//! Provider API clients: one module per provider, each with its signer, its client and its
//! error mapping side by side.
//!
//! Who we call ([`Provider`], [`Action`]) is a type, never a string: the limiter, the
//! metrics catalogue and the cool-down all key on these.
//!
//! Every request goes through a [`RequestGate`] first (`metered`). The worker and the
//! CLI plug the Redis-side global rate limiter in there, so reconciliation look-ups and page
//! walks are limited like any other call; tests that need no limit use [`OpenGate`]. A
//! provider's own "slow down" is seen where its answer is classified, in `metered`, which
//! asks the gate to pause that provider for every worker.

pub mod iot;
pub mod polyv;
pub mod tencentcloud;

use crate::config::RateLimits;
use crate::{ProviderError, ThrottledBy};
use futures::future::BoxFuture;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A provider API onboard calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Tencent IoT Explorer SaaS service API.
    Iot,
    /// Tencent Cloud International partner API.
    TencentCloud,
    /// POLYV live API.
    Polyv,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 3] = [Provider::Iot, Provider::TencentCloud, Provider::Polyv];

    /// The label used in metrics and Redis key names: `iot`, `tencentcloud`, `polyv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Iot => "iot",
            Provider::TencentCloud => "tencentcloud",
            Provider::Polyv => "polyv",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which configured rate limit (`limits.*`) a request counts against. Whole-provider limits
/// (IoT, POLYV) are shared by all of that provider's actions; Tencent Cloud limits each
/// action on its own (PROVIDERS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `limits.iot`: every IoT Explorer action.
    Iot,
    /// `limits.create_account`.
    CreateAccount,
    /// `limits.send_verify_code`.
    SendVerifyCode,
    /// `limits.get_country_codes`.
    GetCountryCodes,
    /// `limits.polyv`: every POLYV action.
    Polyv,
}

impl Limit {
    /// The limit's name inside its provider's limiter keys.
    pub fn key_name(self) -> &'static str {
        match self {
            Limit::Iot | Limit::Polyv => "all",
            Limit::CreateAccount => "CreateAccount",
            Limit::SendVerifyCode => "SendVerifyCode",
            Limit::GetCountryCodes => "GetCountryCodes",
        }
    }

    /// Requests per second allowed by `limits`; `None` means unlimited (configured as 0).
    pub fn rate(self, limits: &RateLimits) -> Option<f64> {
        let rate = match self {
            Limit::Iot => limits.iot,
            Limit::CreateAccount => limits.create_account,
            Limit::SendVerifyCode => limits.send_verify_code,
            Limit::GetCountryCodes => limits.get_country_codes,
            Limit::Polyv => limits.polyv,
        };
        (rate > 0.0).then_some(rate)
    }
}

/// One action of a provider's API and the limit it counts against. Each provider module
/// declares its actions as constants (e.g. [`iot::CREATE_CUSTOMER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Action {
    /// Whose API.
    pub provider: Provider,
    /// The action's name as the provider spells it (also the metrics label).
    pub name: &'static str,
    /// The limit it counts against.
    pub limit: Limit,
}

/// Every action onboard calls, for the metrics catalogue.
pub const ALL_ACTIONS: [Action; 8] = [
    iot::CREATE_CUSTOMER,
    iot::GET_CUSTOMER_LIST,
    iot::BIND_DEVICE,
    tencentcloud::CREATE_ACCOUNT,
    tencentcloud::SEND_VERIFY_CODE,
    tencentcloud::GET_COUNTRY_CODES,
    polyv::ADD_CUSTOM_USER,
    polyv::GET_CUSTOM_USER,
];

/// Decides when a request for an [`Action`] may be sent, and pauses a provider that said
/// "slow down".
///
/// `admit` resolves when the request may go now. It returns
/// [`ProviderError::Throttled`] when the wait would be too long to sleep through (the job is
/// then rescheduled without using an attempt).
pub trait RequestGate: Send + Sync {
    /// Waits for a permit for one request.
    fn admit(&self, action: Action) -> BoxFuture<'_, Result<(), ProviderError>>;

    /// Pauses `provider` for everyone for `wait` (its own throttling answer).
    fn cool_down(&self, provider: Provider, wait: Duration) -> BoxFuture<'_, ()>;
}

/// A gate that admits every request at once and pauses nobody.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGate;

impl RequestGate for OpenGate {
    fn admit(&self, _action: Action) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }

    fn cool_down(&self, _provider: Provider, _wait: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async {})
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
