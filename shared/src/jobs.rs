//! The four job payloads, their kinds, and the validation every payload passes before it is
//! enqueued.
//!
//! JSON fields are snake_case. Secret fields are [`Secret`], so a `{:?}` of a job never shows
//! a password. Validation checks every rule PROVIDERS.md states and names the field and the
//! rule that failed.

use crate::providers::{iot, polyv, tencentcloud, Action, Provider};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which queue a job belongs to. The string form (`create-customer`, ...) names the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// IoT Explorer ServiceCreateCustomer.
    CreateCustomer,
    /// IoT Explorer ServiceBindDevice.
    BindDevices,
    /// Tencent Cloud International CreateAccount (two-phase, SMS verify code).
    CreateAccount,
    /// POLYV add-custom-user.
    RegisterUser,
}

impl JobKind {
    /// Every kind, in a fixed order.
    pub const ALL: [JobKind; 4] = [
        JobKind::CreateCustomer,
        JobKind::BindDevices,
        JobKind::CreateAccount,
        JobKind::RegisterUser,
    ];

    /// The queue name, e.g. `create-customer`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::CreateCustomer => "create-customer",
            JobKind::BindDevices => "bind-devices",
            JobKind::CreateAccount => "create-account",
            JobKind::RegisterUser => "register-user",
        }
    }

    /// The provider action an attempt of this kind makes (its first request): what the
    /// claim reserves a slot of the limit for.
    pub fn action(self) -> Action {
        match self {
            JobKind::CreateCustomer => iot::CREATE_CUSTOMER,
            JobKind::BindDevices => iot::BIND_DEVICE,
            JobKind::CreateAccount => tencentcloud::CREATE_ACCOUNT,
            JobKind::RegisterUser => polyv::ADD_CUSTOM_USER,
        }
    }

    /// The provider whose API this kind calls (and whose limits and cool-downs it obeys).
    pub fn provider(self) -> Provider {
        match self {
            JobKind::CreateCustomer | JobKind::BindDevices => Provider::Iot,
            JobKind::CreateAccount => Provider::TencentCloud,
            JobKind::RegisterUser => Provider::Polyv,
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown job kind `{s}` (expected create-customer, bind-devices, create-account or register-user)")
            })
    }
}

/// `create-customer`: ServiceCreateCustomer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerJob {
    /// The vendor's user id: letters, digits and `_`, 1 to 32 characters.
    pub customer_id: String,
    /// Phone country code, digits (e.g. `86`).
    pub country_code: String,
    /// Phone number, digits.
    pub phone_number: String,
}

/// One device relation of a `bind-devices` job (ServiceDeviceInfo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// The vendor's device number for that user.
    pub customer_device_no: String,
    /// `ProductId/DeviceName`.
    pub device_id: String,
    /// The product's name.
    pub product_name: String,
}

/// `bind-devices`: ServiceBindDevice, one request carrying all of a customer's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindDevicesJob {
    /// The customer the devices are bound to.
    pub customer_id: String,
    /// At least one device.
    pub devices: Vec<DeviceInfo>,
}

/// CreateAccount's `AccountType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    /// A personal account.
    Personal,
    /// A company account.
    Company,
}

impl AccountType {
    /// The value sent to the provider.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Personal => "personal",
            AccountType::Company => "company",
        }
    }
}

/// `create-account`: Tencent Cloud International CreateAccount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountJob {
    /// `personal` or `company`.
    pub account_type: AccountType,
    /// The account's e-mail.
    pub mail: String,
    /// 8 to 20 characters; digits, letters and one of `!@#$%^&*()`; no space.
    pub password: Secret,
    /// Must equal `password`.
    pub confirm_password: Secret,
    /// 1 to 32 digits.
    pub phone_num: String,
    /// e.g. `852`; `7`, `380` and `86` are refused.
    pub country_code: String,
    /// ISO 3166 alpha-2, e.g. `HK`.
    pub area: String,
    /// Optional extension field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended: Option<String>,
    /// Optional industry id (newer API versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_one: Option<String>,
    /// Optional industry id (newer API versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_two: Option<String>,
}

/// `register-user`: POLYV add-custom-user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterUserJob {
    /// The user's e-mail (POLYV's lookup key).
    pub email: String,
    /// The user's mobile number.
    pub mobile: String,
    /// 5 to 16 characters.
    pub passwd: Secret,
    /// Optional display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Optional company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    /// Optional sales id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<i64>,
}

/// Any job, tagged by its kind: `{"kind": "create-customer", "customer_id": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Job {
    /// See [`CreateCustomerJob`].
    CreateCustomer(CreateCustomerJob),
    /// See [`BindDevicesJob`].
    BindDevices(BindDevicesJob),
    /// See [`CreateAccountJob`].
    CreateAccount(CreateAccountJob),
    /// See [`RegisterUserJob`].
    RegisterUser(RegisterUserJob),
}

impl Job {
    /// The job's kind (its queue).
    pub fn kind(&self) -> JobKind {
        match self {
            Job::CreateCustomer(_) => JobKind::CreateCustomer,
            Job::BindDevices(_) => JobKind::BindDevices,
            Job::CreateAccount(_) => JobKind::CreateAccount,
            Job::RegisterUser(_) => JobKind::RegisterUser,
        }
    }

    /// The natural key the provider knows the created thing by (customer id, mail, e-mail):
    /// the base of a job's idempotency key.
    pub fn natural_key(&self) -> &str {
        match self {
            Job::CreateCustomer(j) => &j.customer_id,
            Job::BindDevices(j) => &j.customer_id,
            Job::CreateAccount(j) => &j.mail,
            Job::RegisterUser(j) => &j.email,
        }
    }
}
