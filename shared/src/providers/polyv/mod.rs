//! POLYV live API v2 (`polyv`): add-custom-user, and get-custom-user to reconcile.
//!
//! Parameters travel as a query string on the POST (the seed's PHP example, the default) or
//! as a form body, by configuration. Each request carries a fresh 13-digit millisecond
//! timestamp and its own MD5 signature.

#[cfg(feature = "http")]
mod client;
pub mod errors;
pub mod signer;
#[cfg(feature = "http")]
pub use client::PolyvClient;

use super::{Action, Limit, Provider};
use crate::secret::Secret;

/// add-custom-user.
pub const ADD_CUSTOM_USER: Action = action("add-custom-user");
/// get-custom-user.
pub const GET_CUSTOM_USER: Action = action("get-custom-user");

/// Every POLYV action counts against the provider's one limit.
const fn action(name: &'static str) -> Action {
    Action {
        provider: Provider::Polyv,
        name,
        limit: Limit::Polyv,
    }
}

/// A POLYV user as add-custom-user and get-custom-user return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolyvUser {
    /// The user's own appId.
    pub app_id: String,
    /// The user id.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// The user's own API secret: stored encrypted, never logged.
    pub app_secret: Secret,
}
