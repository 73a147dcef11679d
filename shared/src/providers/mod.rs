//! Provider API clients: one module per provider, each with its signer, its client and its
//! error mapping side by side. The clients and what they send with (`http`) are behind the
//! `http` feature (on by default); without it the types, signers and error mappings remain.
//!
//! Who we call ([`Provider`], [`Action`]) is a type, never a string: the limiter, the
//! metrics catalogue and the cool-down all key on these.
//!
//! Every request goes through a [`RequestGate`] first (`metered`). The worker and the
//! CLI plug the Redis-side global rate limiter in there, so reconciliation look-ups and page
//! walks are limited like any other call; tests that need no limit use [`OpenGate`]. A
//! provider's own "slow down" is seen where its answer is classified, in `metered`, which
//! asks the gate to pause that provider for every worker.

#[cfg(feature = "http")]
mod http;
pub mod iot;
pub mod polyv;
pub mod tencentcloud;

#[cfg(feature = "http")]
pub use http::http_client;
#[cfg(feature = "http")]
pub(crate) use http::{metered, read_json};

use crate::config::RateLimits;
use crate::ProviderError;
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
