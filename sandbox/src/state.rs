//! The sandbox's in-memory world: credentials it accepts, rate limits, the providers' data
//! (customers, bindings, accounts, SMS codes, POLYV users), counters and fault settings.
//!
//! Everything sits behind short-lived `std::sync::Mutex` locks that are never held across
//! an `.await`.

use crate::faults::{FaultSettings, Faults};
use crate::lock::lock;
use crate::ratelimit::RateLimiter;
use crate::stats::Stats;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// The credentials the sandbox accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// IoT Explorer AppKey.
    pub iot_app_key: String,
    /// IoT Explorer AppSecret (HMAC key).
    pub iot_app_secret: String,
    /// Tencent Cloud SecretId.
    pub tc_secret_id: String,
    /// Tencent Cloud SecretKey.
    pub tc_secret_key: String,
    /// POLYV appId.
    pub polyv_app_id: String,
    /// POLYV appSecret.
    pub polyv_app_secret: String,
}

/// Requests per second allowed per limit key, and whether limits are enforced at all.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Whether to refuse requests over the limit.
    pub enabled: bool,
    /// Whole IoT provider.
    pub iot: u64,
    /// Tencent Cloud CreateAccount.
    pub create_account: u64,
    /// Tencent Cloud SendVerifyCode.
    pub send_verify_code: u64,
    /// Tencent Cloud GetCountryCodes.
    pub get_country_codes: u64,
    /// Whole POLYV provider.
    pub polyv: u64,
}

/// An IoT customer.
#[derive(Debug, Clone)]
pub struct Customer {
    /// When it was created (look-ups may lag behind, see `FaultSettings::lookup_lag_ms`).
    pub created: std::time::Instant,
    /// CustomerId.
    pub customer_id: String,
    /// CountryCode.
    pub country_code: String,
    /// PhoneNumber.
    pub phone_number: String,
}

/// A device bound to an IoT customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The vendor's device number.
    pub customer_device_no: String,
    /// `ProductId/DeviceName`.
    pub device_id: String,
    /// ProductName.
    pub product_name: String,
}

/// A Tencent Cloud account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Uin.
    pub uin: String,
    /// Mail (the natural key).
    pub mail: String,
    /// `<CountryCode><PhoneNum>`.
    pub phone: String,
}

/// SMS state of one phone (`<CountryCode><PhoneNum>`).
#[derive(Debug, Clone, Default)]
pub struct Phone {
    /// Every code texted, oldest first.
    pub inbox: Vec<String>,
    /// The code that is currently valid and its expiry (Unix seconds).
    pub current: Option<(String, i64)>,
    /// When the last code was sent (Unix seconds).
    pub last_sent: Option<i64>,
    /// Accounts registered with this phone.
    pub accounts: u32,
}

/// A POLYV sub-user.
#[derive(Debug, Clone)]
pub struct PolyvUser {
    /// When it was created (look-ups may lag behind, see `FaultSettings::lookup_lag_ms`).
    pub created: std::time::Instant,
    /// The user's own appId.
    pub app_id: String,
    /// Display name.
    pub name: String,
    /// The user's own appSecret.
    pub app_secret: String,
    /// userId.
    pub user_id: String,
    /// email (the natural key).
    pub email: String,
    /// mobile.
    pub mobile: String,
}

/// The providers' data.
#[derive(Debug, Default)]
pub struct Store {
    /// IoT customers by CustomerId (sorted, for listing).
    pub customers: BTreeMap<String, Customer>,
    /// IoT bindings by CustomerId, then DeviceId.
    pub bindings: BTreeMap<String, BTreeMap<String, Binding>>,
    /// Tencent Cloud accounts by Mail.
    pub accounts: HashMap<String, Account>,
    /// SMS state by phone.
    pub phones: HashMap<String, Phone>,
    /// POLYV users by email.
    pub polyv_users: HashMap<String, PolyvUser>,
}

/// Everything a handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Accepted credentials.
    pub creds: Credentials,
    /// Rate limits.
    pub limits: Limits,
    /// Provider data.
    pub store: Mutex<Store>,
    /// Counters.
    pub stats: Mutex<Stats>,
    /// Fault settings and their RNG.
    pub faults: Mutex<Faults>,
    /// Rate-limit windows.
    pub limiter: Mutex<RateLimiter>,
    /// RNG for codes, ids and secrets.
    pub rng: Mutex<StdRng>,
    seed: u64,
}

impl AppState {
    /// A fresh state; `seed` seeds the data RNG, `faults` are the initial fault settings.
    pub fn new(creds: Credentials, limits: Limits, seed: u64, faults: FaultSettings) -> Self {
        AppState {
            creds,
            limits,
            store: Mutex::new(Store::default()),
            stats: Mutex::new(Stats::default()),
            faults: Mutex::new(Faults::new(faults)),
            limiter: Mutex::new(RateLimiter::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            seed,
        }
    }

    /// Clears data, counters, rate windows and faults; reseeds the data RNG.
    pub fn reset(&self) {
        *lock(&self.store) = Store::default();
        *lock(&self.stats) = Stats::default();
        *lock(&self.faults) = Faults::new(FaultSettings::default());
        lock(&self.limiter).clear();
        *lock(&self.rng) = StdRng::seed_from_u64(self.seed);
    }

    /// Counts an arrival of `action` and applies the rate limit of `limit_key`; returns
    /// whether the request may go on (a refusal is counted as a violation). The second it
    /// counts in is now's, or a little later's under a transit jitter (see `faults`).
    pub fn arrive(&self, action: &str, limit_key: &str, limit: u64) -> bool {
        let transit = lock(&self.faults).transit_ms();
        let now = (now_millis() + i64::try_from(transit).unwrap_or(0)).div_euclid(1000);
        lock(&self.stats).arrived(action, now);
        if !self.limits.enabled {
            return true;
        }
        let ok = lock(&self.limiter).admit(limit_key, limit, now);
        if !ok {
            lock(&self.stats).rate_limited(action);
        }
        ok
    }

    /// `len` random characters from `alphabet`.
    pub fn random_string(&self, alphabet: &[u8], len: usize) -> String {
        let mut rng = lock(&self.rng);
        (0..len)
            .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
            .collect()
    }
}

/// Digits, for codes and numeric ids.
pub const DIGITS: &[u8] = b"0123456789";
/// Lowercase hex digits.
pub const HEX: &[u8] = b"0123456789abcdef";
/// Lowercase letters and digits.
pub const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The current Unix time in seconds.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The current Unix time in milliseconds.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Now, in Unix milliseconds, unsigned (0 before 1970).
pub fn now_millis_u64() -> u64 {
    u64::try_from(now_millis()).unwrap_or(0)
}
