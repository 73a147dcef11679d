//! Tencent Cloud International partner API (`tencentcloud`, service `intlpartnersmgt`,
//! version 2022-09-28): CreateAccount (both phases), SendVerifyCode and GetCountryCodes.
//!
//! Each request is a POST to `/` whose JSON body holds the action's parameters; the action,
//! version, timestamp and TC3 signature travel in headers. The signed `host` is the host of
//! the configured endpoint, port included, which is what reqwest sends as `Host`.

#[cfg(feature = "http")]
mod client;
pub mod errors;
pub mod signer;
#[cfg(feature = "http")]
pub use client::TencentCloudClient;

use super::{Action, Limit, Provider};
use serde::{Deserialize, Serialize};

/// CreateAccount (both phases), 5/s by default.
pub const CREATE_ACCOUNT: Action = action("CreateAccount", Limit::CreateAccount);
/// SendVerifyCode.
pub const SEND_VERIFY_CODE: Action = action("SendVerifyCode", Limit::SendVerifyCode);
/// GetCountryCodes.
pub const GET_COUNTRY_CODES: Action = action("GetCountryCodes", Limit::GetCountryCodes);

/// Tencent Cloud limits each action on its own.
const fn action(name: &'static str, limit: Limit) -> Action {
    Action {
        provider: Provider::TencentCloud,
        name,
        limit,
    }
}
/// The credential-scope service: fixed, not taken from the host.
pub const SERVICE: &str = "intlpartnersmgt";
/// The API version every request names.
pub const VERSION: &str = "2022-09-28";

/// What CreateAccount answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateAccountOutcome {
    /// Neither `Uin` nor `Error`: the provider texted a code to the phone.
    CodeSent,
    /// The account exists now.
    Created {
        /// The new account's Uin.
        uin: String,
    },
}

/// One entry of GetCountryCodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryCode {
    /// English name.
    #[serde(rename = "EnName", default)]
    pub en_name: String,
    /// Local name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// ISO 3166 alpha-2 (the provider's spelling of the field).
    #[serde(rename = "IOS2", default)]
    pub iso2: String,
    /// ISO 3166 alpha-3.
    #[serde(rename = "IOS3", default)]
    pub iso3: String,
    /// Calling code.
    #[serde(rename = "Code", default)]
    pub code: String,
}

/// The endpoint could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid endpoint {endpoint:?}: {reason}")]
pub struct EndpointError {
    endpoint: String,
    reason: String,
}
