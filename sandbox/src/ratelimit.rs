//! Fixed-window rate limiting aligned to wall-clock seconds.
//!
//! Each key (an action, or a whole provider for iot/polyv) counts the requests that arrived
//! in the current Unix second; once the count passes the limit, further requests in that
//! second are refused. This mirrors how the providers document their limits ("N per second").

use std::collections::HashMap;

/// Per-key request counters for the current second.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: HashMap<String, (i64, u64)>,
}

impl RateLimiter {
    /// Counts one request for `key` arriving in second `now_sec`; returns whether it is within
    /// `limit` requests for that second.
    pub fn admit(&mut self, key: &str, limit: u64, now_sec: i64) -> bool {
        let window = self.windows.entry(key.to_string()).or_insert((now_sec, 0));
        if window.0 != now_sec {
            *window = (now_sec, 0);
        }
        window.1 += 1;
        window.1 <= limit
    }

    /// Forgets every window.
    pub fn clear(&mut self) {
        self.windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_above_limit_and_resets_next_second() {
        let mut rl = RateLimiter::default();
        assert!(rl.admit("a", 2, 10));
        assert!(rl.admit("a", 2, 10));
        assert!(!rl.admit("a", 2, 10));
        assert!(rl.admit("b", 2, 10));
        assert!(rl.admit("a", 2, 11));
    }
}
