//! Counters exposed at `GET /_sandbox/stats`: per-action request/outcome counts, the busiest
//! second seen, and how often each natural key was created (to prove no duplicates).

use serde::Serialize;
use std::collections::BTreeMap;

/// Every action the sandbox serves, listed so stats show zeros before any traffic.
pub const ACTIONS: &[&str] = &[
    "ServiceCreateCustomer",
    "ServiceGetCustomerList",
    "ServiceBindDevice",
    "CreateAccount",
    "SendVerifyCode",
    "GetCountryCodes",
    "add-custom-user",
    "get-custom-user",
];

/// Counters of one action.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ActionStats {
    /// Requests that arrived (before rate limiting).
    pub requests: u64,
    /// Requests whose action was performed successfully.
    pub successes: u64,
    /// Requests refused for a bad signature.
    pub signature_failures: u64,
    /// Requests refused by the rate limiter.
    pub rate_limit_violations: u64,
    /// Most requests that arrived within one wall-clock second.
    pub max_per_second: u64,
    #[serde(skip)]
    window_sec: i64,
    #[serde(skip)]
    window_count: u64,
}

/// Which kind of thing was created, for [`Stats::created`].
#[derive(Debug, Clone, Copy)]
pub enum CreateKind {
    /// An IoT customer, keyed by CustomerId.
    Customer,
    /// A Tencent Cloud account, keyed by Mail.
    Account,
    /// A POLYV user, keyed by email.
    PolyvUser,
}

/// Successful creations per natural key.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Creates {
    /// CustomerId -> creations.
    pub customers: BTreeMap<String, u64>,
    /// Mail -> creations.
    pub accounts: BTreeMap<String, u64>,
    /// email -> creations.
    pub polyv_users: BTreeMap<String, u64>,
}

/// All counters.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Per action name.
    pub actions: BTreeMap<String, ActionStats>,
    /// Creations per natural key.
    pub creates: Creates,
    /// Creations of a key that had already been created.
    pub duplicates: u64,
    /// When each key was first created (Unix ms), for timing a request from its job's
    /// enqueue (`GET /_sandbox/created`); not part of `/_sandbox/stats`.
    #[serde(skip)]
    pub first_created_ms: Creates,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            actions: ACTIONS
                .iter()
                .map(|a| (a.to_string(), ActionStats::default()))
                .collect(),
            creates: Creates::default(),
            duplicates: 0,
            first_created_ms: Creates::default(),
        }
    }
}

impl Stats {
    fn entry(&mut self, action: &str) -> &mut ActionStats {
        self.actions.entry(action.to_string()).or_default()
    }

    /// Records a request of `action` arriving in second `now_sec`.
    pub fn arrived(&mut self, action: &str, now_sec: i64) {
        let s = self.entry(action);
        s.requests += 1;
        if s.window_sec != now_sec {
            s.window_sec = now_sec;
            s.window_count = 0;
        }
        s.window_count += 1;
        s.max_per_second = s.max_per_second.max(s.window_count);
    }

    /// Records a successful request.
    pub fn success(&mut self, action: &str) {
        self.entry(action).successes += 1;
    }

    /// Records a signature failure.
    pub fn signature_failure(&mut self, action: &str) {
        self.entry(action).signature_failures += 1;
    }

    /// Records a rate-limit refusal.
    pub fn rate_limited(&mut self, action: &str) {
        self.entry(action).rate_limit_violations += 1;
    }

    /// Records a successful creation of `key`, counting a duplicate if it was created before.
    pub fn created(&mut self, kind: CreateKind, key: &str) {
        let map = match kind {
            CreateKind::Customer => &mut self.creates.customers,
            CreateKind::Account => &mut self.creates.accounts,
            CreateKind::PolyvUser => &mut self.creates.polyv_users,
        };
        let count = map.entry(key.to_string()).or_insert(0);
        if *count > 0 {
            self.duplicates += 1;
        }
        *count += 1;
        let times = match kind {
            CreateKind::Customer => &mut self.first_created_ms.customers,
            CreateKind::Account => &mut self.first_created_ms.accounts,
            CreateKind::PolyvUser => &mut self.first_created_ms.polyv_users,
        };
        times
            .entry(key.to_string())
            .or_insert_with(crate::state::now_millis_u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_per_second_and_duplicates() {
        let mut s = Stats::default();
        s.arrived("CreateAccount", 1);
        s.arrived("CreateAccount", 1);
        s.arrived("CreateAccount", 2);
        assert_eq!(s.actions["CreateAccount"].max_per_second, 2);
        assert_eq!(s.actions["CreateAccount"].requests, 3);
        s.created(CreateKind::Account, "a@b.c");
        assert_eq!(s.duplicates, 0);
        s.created(CreateKind::Account, "a@b.c");
        assert_eq!(s.duplicates, 1);
    }
}
