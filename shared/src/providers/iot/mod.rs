//! Tencent IoT Explorer SaaS service API (`iot`): ServiceCreateCustomer,
//! ServiceGetCustomerList and ServiceBindDevice.
//!
//! Every parameter, the common ones included, travels in one JSON body that is signed afresh
//! for each request (new Timestamp, Nonce and RequestId), so a retry is never a replay.
//! Answers come in Tencent's `{"Response": ...}` envelope or, from some gateways, as
//! `{"code", "msg", "data"}`; both are accepted.

#[cfg(feature = "http")]
mod client;
pub mod errors;
pub mod signer;
#[cfg(feature = "http")]
pub use client::IotClient;

use super::{Action, Limit, Provider};
use serde::{Deserialize, Serialize};

/// ServiceCreateCustomer.
pub const CREATE_CUSTOMER: Action = action("ServiceCreateCustomer");
/// ServiceGetCustomerList.
pub const GET_CUSTOMER_LIST: Action = action("ServiceGetCustomerList");
/// ServiceBindDevice.
pub const BIND_DEVICE: Action = action("ServiceBindDevice");

/// Every IoT Explorer action counts against the provider's one limit.
const fn action(name: &'static str) -> Action {
    Action {
        provider: Provider::Iot,
        name,
        limit: Limit::Iot,
    }
}

/// Largest page ServiceGetCustomerList is asked for.
pub const MAX_PAGE: u32 = 100;

/// One customer as ServiceGetCustomerList returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerInfo {
    /// The SaaS's own customer id.
    pub customer_id: String,
    /// Country calling code.
    pub country_code: String,
    /// Phone number.
    pub phone_number: String,
}

/// Filters for ServiceGetCustomerList; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    /// Exact customer id.
    pub customer_id: Option<String>,
    /// Country calling code.
    pub country_code: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerQuery {
    /// What to match.
    pub filter: CustomerFilter,
    /// First row, 0-based.
    pub offset: u32,
    /// Rows per page (at most [`MAX_PAGE`]).
    pub limit: u32,
}

/// One page of customers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerPage {
    /// The customers on this page.
    pub customers: Vec<CustomerInfo>,
    /// How many match in all.
    pub total: u64,
}
