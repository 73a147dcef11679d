//! The HTTP API's configuration (`[api]`): where `onboard-producer serve` listens, its body
//! limit, the per-token request rate, and the bearer tokens it accepts.
//!
//! Tokens are kept hashed: `sha256` is the lowercase hex SHA-256 of the token
//! (`onboard-producer token` prints a new random token and its hash). Each token has a
//! name (the source its jobs carry in the fair shares), the job kinds it may enqueue and a
//! role. In TOML:
//!
//! ```toml
//! [[api.tokens]]
//! name = "signup-app"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! kinds = ["create-account", "register-user"]
//! role = "app"
//! ```

use crate::jobs::JobKind;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// What a token may do besides enqueueing its kinds and reading jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Enqueue its kinds, read and follow jobs, supply verify codes, upload batches.
    #[default]
    App,
    /// Everything an app may, plus dead letters, queue and batch pauses, cancels, stats.
    Operator,
}

impl ApiRole {
    /// `app` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::App => "app",
            ApiRole::Operator => "operator",
        }
    }
}

/// Where a token's jobs' terminal states are POSTed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver's URL.
    pub url: String,
    /// The HMAC-SHA256 key of the `Onboard-Signature` header (never sent).
    pub secret: Secret,
}

/// One bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it; the source its jobs carry (`[a-z0-9_-]`, 1 to 64).
    pub name: String,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// The job kinds it may enqueue (empty: none).
    #[serde(default)]
    pub kinds: Vec<JobKind>,
    /// Its role.
    #[serde(default)]
    pub role: ApiRole,
    /// Its requests per second, if not `api.rate_per_sec`.
    #[serde(default)]
    pub rate_per_sec: Option<u32>,
    /// Its burst, if not `api.burst`.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Where its jobs' terminal states are POSTed, if anywhere.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
}

/// `[api]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where `serve` listens unless `--listen` says otherwise.
    pub listen: String,
    /// The largest request body, in bytes, for single requests (413 above it).
    pub body_limit_bytes: usize,
    /// The largest batch upload, in bytes (413 above it).
    pub batch_limit_bytes: u64,
    /// Requests per second one token may make (429 with `Retry-After` above it), unless the
    /// token says otherwise.
    pub rate_per_sec: u32,
    /// How many requests a token may make at once above its rate.
    pub burst: u32,
    /// The tokens accepted.
    pub tokens: Vec<ApiToken>,
    /// How long one webhook delivery may take, milliseconds.
    pub webhook_timeout_ms: u64,
    /// Deliveries of one event before it is given up (kept in the webhook dead list).
    pub webhook_max_attempts: u32,
    /// Webhook retry backoff base, milliseconds (doubling, with jitter).
    pub webhook_backoff_base_ms: u64,
    /// Webhook retry backoff cap, milliseconds.
    pub webhook_backoff_cap_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8090".into(),
            body_limit_bytes: 64 * 1024,
            batch_limit_bytes: 1 << 30,
            rate_per_sec: 2_000,
            burst: 2_000,
            tokens: Vec::new(),
            webhook_timeout_ms: 5_000,
            webhook_max_attempts: 12,
            webhook_backoff_base_ms: 1_000,
            webhook_backoff_cap_ms: 600_000,
        }
    }
}

impl ApiConfig {
    /// Problems that make the token table unusable: a hash that is not 64 hex digits, a
    /// name repeated or malformed. Names what is wrong, never a hash.
    pub fn check(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for t in &self.tokens {
            let name_ok = !t.name.is_empty()
                && t.name.len() <= 64
                && t.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(format!(
                    "api.tokens: name {:?} must be 1 to 64 of a-z, 0-9, - and _",
                    t.name
                ));
            }
            if !names.insert(t.name.as_str()) {
                return Err(format!("api.tokens: name {} is used twice", t.name));
            }
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "api.tokens: {}: sha256 must be 64 hex digits (onboard-producer token)",
                    t.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, sha256: &str) -> ApiToken {
        ApiToken {
            name: name.into(),
            sha256: sha256.into(),
            kinds: vec![JobKind::CreateCustomer],
            role: ApiRole::App,
            rate_per_sec: None,
            burst: None,
            webhook: None,
        }
    }

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn tokens_are_checked_without_showing_a_hash() {
        let mut cfg = ApiConfig {
            tokens: vec![token("app", HASH), token("ops", HASH)],
            ..ApiConfig::default()
        };
        assert_eq!(cfg.check(), Ok(()));
        cfg.tokens.push(token("app", HASH));
        assert!(cfg.check().unwrap_err().contains("used twice"));
        cfg.tokens = vec![token("app", "not-a-hash")];
        let e = cfg.check().unwrap_err();
        assert!(
            e.contains("64 hex digits") && !e.contains("not-a-hash"),
            "{e}"
        );
        cfg.tokens = vec![token("bad name!", HASH)];
        assert!(cfg.check().unwrap_err().contains("a-z, 0-9"));
    }

    #[test]
    fn a_token_table_reads_from_toml() {
        let text = format!(
            "[[tokens]]\nname = \"app\"\nsha256 = \"{HASH}\"\nkinds = [\"create-account\"]\nrole = \"operator\"\nrate_per_sec = 3\nwebhook = {{ url = \"http://127.0.0.1:9/h\", secret = \"s\" }}\n"
        );
        let cfg: ApiConfig = toml::from_str(&text).expect("parses");
        let t = &cfg.tokens[0];
        assert_eq!(
            (t.role, t.kinds.as_slice(), t.rate_per_sec),
            (ApiRole::Operator, &[JobKind::CreateAccount][..], Some(3))
        );
        assert_eq!(t.webhook.as_ref().map(|w| w.secret.expose()), Some("s"));
        assert!(toml::from_str::<ApiConfig>(
            "[[tokens]]\nname = \"x\"\nsha256 = \"y\"\nrole = \"admin\"\n"
        )
        .is_err());
    }
}
