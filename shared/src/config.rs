//! Configuration: one TOML file, with `ONBOARD_*` environment variables over it.
//!
//! Top-level keys map to `ONBOARD_<KEY>` (`ONBOARD_REDIS_URL`, `ONBOARD_ENCRYPTION_KEY`,
//! `ONBOARD_METRICS_LISTEN`); nested keys use a double underscore
//! (`ONBOARD_IOT__APP_SECRET`, `ONBOARD_LIMITS__CREATE_ACCOUNT`). Every provider endpoint is
//! configurable, which is how tests and the demo point the worker at the sandbox.
//! Credentials should come from the environment, never from a committed file.

use crate::jobs::JobKind;
use crate::secret::Secret;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::Path;

mod api;
pub use api::{ApiConfig, ApiRole, ApiToken, WebhookConfig};

/// Sandbox credentials: what `onboard-sandbox` accepts when no `ONBOARD_*` credential is set.
/// Public by design; they only ever work against the local sandbox.
pub mod sandbox_defaults {
    /// IoT Explorer AppKey.
    pub const IOT_APP_KEY: &str = "sandbox-iot-app-key";
    /// IoT Explorer AppSecret.
    pub const IOT_APP_SECRET: &str = "sandbox-iot-app-secret";
    /// Tencent Cloud SecretId.
    pub const TC_SECRET_ID: &str = "AKIDsandboxsecretid";
    /// Tencent Cloud SecretKey.
    pub const TC_SECRET_KEY: &str = "sandbox-tc-secret-key";
    /// POLYV appId.
    pub const POLYV_APP_ID: &str = "sandboxappid";
    /// POLYV appSecret.
    pub const POLYV_APP_SECRET: &str = "sandbox-polyv-app-secret";
    /// Where the sandbox listens by default.
    pub const LISTEN: &str = "127.0.0.1:8080";
}

/// Whether the process runs against real providers or the local sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Real providers; an encryption key is required.
    #[default]
    Production,
    /// The local sandbox; a fixed development encryption key is used when none is given.
    Sandbox,
}

/// How IoT Explorer nested values (ServiceBindDevice's `DeviceInfos`) enter the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NestedEncoding {
    /// `DeviceInfos.0.DeviceId=...` (the project's convention).
    #[default]
    Flatten,
    /// The compact JSON text of the value.
    Json,
}

/// How CreateAccount's phase 1 asks the provider to text a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyCodeMode {
    /// CreateAccount with an empty VerifyCode (the seed's flow).
    #[default]
    Inline,
    /// The separate SendVerifyCode action (newer API versions).
    SendVerifyCode,
}

/// How POLYV parameters are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParamStyle {
    /// URL query string on a POST (the seed's PHP example).
    #[default]
    Query,
    /// `application/x-www-form-urlencoded` body.
    Form,
}

/// IoT Explorer SaaS service API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IotConfig {
    /// Full URL of the service API.
    pub endpoint: String,
    /// The SaaS AppKey.
    pub app_key: String,
    /// The SaaS AppSecret (HMAC key, never sent).
    pub app_secret: Secret,
    /// Nested-value encoding in the signature.
    pub nested_encoding: NestedEncoding,
}

impl Default for IotConfig {
    fn default() -> Self {
        IotConfig {
            endpoint: "https://iot.cloud.tencent.com/api/exploreropen/serviceapi".into(),
            app_key: String::new(),
            app_secret: Secret::new(""),
            nested_encoding: NestedEncoding::Flatten,
        }
    }
}

/// Tencent Cloud International partner API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TencentCloudConfig {
    /// Endpoint URL; its host (and port) is what gets signed.
    pub endpoint: String,
    /// SecretId.
    pub secret_id: String,
    /// SecretKey.
    pub secret_key: Secret,
    /// Phase-1 mode.
    pub verify_code_mode: VerifyCodeMode,
    /// Optional `X-TC-Language`.
    pub language: Option<String>,
}

impl Default for TencentCloudConfig {
    fn default() -> Self {
        TencentCloudConfig {
            endpoint: "https://intlpartnersmgt.intl.tencentcloudapi.com/".into(),
            secret_id: String::new(),
            secret_key: Secret::new(""),
            verify_code_mode: VerifyCodeMode::Inline,
            language: None,
        }
    }
}

/// POLYV live API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolyvConfig {
    /// Base URL; `/live/v2/app/add-custom-user` is appended.
    pub base_url: String,
    /// appId.
    pub app_id: String,
    /// appSecret (never sent).
    pub app_secret: Secret,
    /// Query string or form body.
    pub param_style: ParamStyle,
}

impl Default for PolyvConfig {
    fn default() -> Self {
        PolyvConfig {
            base_url: "https://api.polyv.net".into(),
            app_id: String::new(),
            app_secret: Secret::new(""),
            param_style: ParamStyle::Query,
        }
    }
}

/// Global rate limits, requests per second, shared by every worker process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Whole `iot` provider.
    pub iot: f64,
    /// Tencent Cloud CreateAccount.
    pub create_account: f64,
    /// Tencent Cloud SendVerifyCode.
    pub send_verify_code: f64,
    /// Tencent Cloud GetCountryCodes.
    pub get_country_codes: f64,
    /// Whole `polyv` provider.
    pub polyv: f64,
    /// The share of each provider's rate the bulk lane keeps when live work could take it
    /// all (0 to 1; 0.1 = one request in ten).
    pub bulk_min_share: f64,
    /// How far ahead (ms) a claim reserves request slots: a live job waits at most about
    /// this long behind bulk work already claimed. Long enough to cover a claim's round trip.
    pub reserve_ahead_ms: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            iot: 20.0,
            create_account: 5.0,
            send_verify_code: 20.0,
            get_country_codes: 5.0,
            polyv: 100.0,
            bulk_min_share: 0.1,
            reserve_ahead_ms: 100,
        }
    }
}

/// A per-kind setting (concurrency, max attempts).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PerKind<T> {
    /// `create-customer`.
    pub create_customer: T,
    /// `bind-devices`.
    pub bind_devices: T,
    /// `create-account`.
    pub create_account: T,
    /// `register-user`.
    pub register_user: T,
}

impl<T: Copy> PerKind<T> {
    /// The same value for every kind.
    pub const fn all(value: T) -> Self {
        PerKind {
            create_customer: value,
            bind_devices: value,
            create_account: value,
            register_user: value,
        }
    }

    /// The value for one kind.
    pub fn get(&self, kind: JobKind) -> T {
        match kind {
            JobKind::CreateCustomer => self.create_customer,
            JobKind::BindDevices => self.bind_devices,
            JobKind::CreateAccount => self.create_account,
            JobKind::RegisterUser => self.register_user,
        }
    }
}

/// Queue behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Lease (visibility timeout) of a running job, milliseconds.
    pub lease_ms: u64,
    /// How long finished jobs are kept, seconds (default 7 days).
    pub retention_secs: u64,
    /// Max attempts per kind (default 10).
    pub max_attempts: PerKind<u32>,
    /// Concurrent jobs per kind per worker process.
    pub concurrency: PerKind<u32>,
    /// Retry backoff base, milliseconds (exponential with full jitter).
    pub backoff_base_ms: u64,
    /// Retry backoff cap, milliseconds.
    pub backoff_cap_ms: u64,
    /// Approximate max length of the `onboard:events` stream.
    pub events_maxlen: u64,
    /// How long a texted verify code stays usable, seconds.
    pub code_lifetime_secs: u64,
    /// A rate-limit wait up to this is slept in the worker; a longer one reschedules the job.
    pub max_inline_wait_ms: u64,
    /// How long SIGTERM waits for running jobs before handing them back.
    pub shutdown_grace_ms: u64,
    /// Jobs a worker claims ahead of free slots, per provider, where the provider has no
    /// rate limit (0 = none): a draining worker's claims then overlap its running jobs.
    /// They wait in the worker with their leases renewed, and go back to the queue
    /// unstarted when it stops. Off by default: a worker claiming ahead holds jobs that
    /// another, idle worker could run now.
    pub prefetch: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease_ms: 30_000,
            retention_secs: 7 * 24 * 3600,
            max_attempts: PerKind::all(10),
            concurrency: PerKind::all(50),
            backoff_base_ms: 1_000,
            backoff_cap_ms: 600_000,
            events_maxlen: 100_000,
            code_lifetime_secs: 600,
            max_inline_wait_ms: 1_000,
            shutdown_grace_ms: 10_000,
            prefetch: 0,
        }
    }
}

/// When a write to Redis counts as done. Redis replicates asynchronously: a master that
/// dies a moment after answering can take its last writes with it, and the replica that
/// takes over never had them. `Replicated` closes that window at the cost of a round trip
/// to a replica per write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Done when the master has it.
    #[default]
    Async,
    /// Done when a replica confirmed it too (`WAIT 1 <replication_timeout_ms>`); a write no
    /// replica confirmed in time is reported as an error (it is on the master, and may be
    /// lost with it).
    Replicated,
}

/// Everything a worker or producer needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Production or sandbox.
    pub profile: Profile,
    /// Redis: one URL (`redis://...`), or a Redis Cluster's seed nodes separated by commas
    /// (whether it is a cluster is asked of the first node that answers).
    pub redis_url: String,
    /// When a write counts as done: `async` (the Redis master has it) or `replicated` (a
    /// replica confirmed it too: `WAIT 1` after every enqueue, ack and supplied code).
    pub durability: Durability,
    /// With `durability = "replicated"`: how long a write waits for a replica, ms.
    pub replication_timeout_ms: u64,
    /// Base64 of a 32-byte key for encrypting payloads and results at rest.
    pub encryption_key: Option<Secret>,
    /// Where the worker serves `/metrics`, `/healthz` and `/readyz`.
    pub metrics_listen: String,
    /// Timeout of one provider HTTP request, milliseconds.
    pub http_timeout_ms: u64,
    /// IoT Explorer.
    pub iot: IotConfig,
    /// Tencent Cloud International.
    pub tencentcloud: TencentCloudConfig,
    /// POLYV.
    pub polyv: PolyvConfig,
    /// Global rate limits.
    pub limits: RateLimits,
    /// Queue behaviour.
    pub queue: QueueConfig,
    /// Benchmarks only: answer every job in-process without calling any provider, to
    /// measure the queue alone. Refused outside the sandbox profile.
    pub stub_providers: bool,
    /// The HTTP API (`onboard-producer serve`).
    pub api: ApiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: Profile::Production,
            redis_url: "redis://127.0.0.1:6379/".into(),
            durability: Durability::Async,
            replication_timeout_ms: 2_000,
            encryption_key: None,
            metrics_listen: "127.0.0.1:9464".into(),
            http_timeout_ms: 10_000,
            iot: IotConfig::default(),
            tencentcloud: TencentCloudConfig::default(),
            polyv: PolyvConfig::default(),
            limits: RateLimits::default(),
            queue: QueueConfig::default(),
            stub_providers: false,
            api: ApiConfig::default(),
        }
    }
}

/// `ONBOARD_*` variables the binaries read on their own, not configuration keys: the loader
/// skips them (it refuses unknown keys). Without the password variables here, setting the
/// one `enqueue` documents made every command fail with "unknown field".
pub const NOT_CONFIG: [&str; 6] = [
    "LOG",
    "LOG_FORMAT",
    "SANDBOX_LISTEN",
    "CONFIG",
    "ACCOUNT_PASSWORD",
    "USER_PASSWORD",
];

/// The most jobs a worker may claim ahead of its slots (`queue.prefetch`), per provider.
pub const MAX_PREFETCH: u32 = 1_000;

/// A configuration that could not be loaded; the message names the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then the TOML file (if given), then `ONBOARD_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Self::env());
        let cfg: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        if cfg.queue.prefetch > MAX_PREFETCH {
            return Err(ConfigError(format!(
                "queue.prefetch is {}, at most {MAX_PREFETCH}: jobs claimed ahead wait in one worker, held from every other",
                cfg.queue.prefetch
            )));
        }
        Ok(cfg)
    }

    fn env() -> Env {
        Env::prefixed("ONBOARD_")
            .filter(|key| {
                !NOT_CONFIG
                    .iter()
                    .any(|k| key.as_str().eq_ignore_ascii_case(k))
            })
            .split("__")
    }

    /// The Redis URL with any password replaced by `***`, for messages and logs.
    pub fn redis_url_for_display(&self) -> String {
        match url::Url::parse(&self.redis_url) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            _ => self.redis_url.clone(),
        }
    }

    /// A configuration for the local sandbox at `base_url` (e.g. `http://127.0.0.1:8080`),
    /// with the sandbox's default credentials.
    pub fn for_sandbox(base_url: &str, redis_url: &str) -> Config {
        let base = base_url.trim_end_matches('/');
        Config {
            profile: Profile::Sandbox,
            redis_url: redis_url.into(),
            iot: IotConfig {
                endpoint: format!("{base}/api/exploreropen/serviceapi"),
                app_key: sandbox_defaults::IOT_APP_KEY.into(),
                app_secret: Secret::new(sandbox_defaults::IOT_APP_SECRET),
                ..IotConfig::default()
            },
            tencentcloud: TencentCloudConfig {
                endpoint: format!("{base}/"),
                secret_id: sandbox_defaults::TC_SECRET_ID.into(),
                secret_key: Secret::new(sandbox_defaults::TC_SECRET_KEY),
                ..TencentCloudConfig::default()
            },
            polyv: PolyvConfig {
                base_url: base.into(),
                app_id: sandbox_defaults::POLYV_APP_ID.into(),
                app_secret: Secret::new(sandbox_defaults::POLYV_APP_SECRET),
                ..PolyvConfig::default()
            },
            ..Config::default()
        }
    }

    /// The `ONBOARD_*` variables that point a worker process at the local sandbox at
    /// `base_url` with the sandbox's credentials: [`Config::for_sandbox`] as environment.
    pub fn sandbox_provider_env(base_url: &str) -> Vec<(&'static str, String)> {
        let cfg = Config::for_sandbox(base_url, "");
        vec![
            ("ONBOARD_IOT__ENDPOINT", cfg.iot.endpoint),
            ("ONBOARD_IOT__APP_KEY", cfg.iot.app_key),
            (
                "ONBOARD_IOT__APP_SECRET",
                cfg.iot.app_secret.expose().into(),
            ),
            ("ONBOARD_TENCENTCLOUD__ENDPOINT", cfg.tencentcloud.endpoint),
            (
                "ONBOARD_TENCENTCLOUD__SECRET_ID",
                cfg.tencentcloud.secret_id,
            ),
            (
                "ONBOARD_TENCENTCLOUD__SECRET_KEY",
                cfg.tencentcloud.secret_key.expose().into(),
            ),
            ("ONBOARD_POLYV__BASE_URL", cfg.polyv.base_url),
            ("ONBOARD_POLYV__APP_ID", cfg.polyv.app_id),
            (
                "ONBOARD_POLYV__APP_SECRET",
                cfg.polyv.app_secret.expose().into(),
            ),
        ]
    }
}

#[cfg(test)]
// figment's Jail API returns its large error type by value; that is its signature, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn redis_password_is_hidden_for_display() {
        let cfg = Config {
            redis_url: "redis://user:hunter2@db:6379/0".into(),
            ..Config::default()
        };
        let shown = cfg.redis_url_for_display();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db:6379"), "{shown}");
    }

    #[test]
    fn file_then_env_override() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "onboard.toml",
                r#"
                redis_url = "redis://file:1/"
                [limits]
                iot = 7.0
                [queue.max_attempts]
                create_customer = 3
                bind_devices = 4
                create_account = 5
                register_user = 6
                "#,
            )?;
            jail.set_env("ONBOARD_REDIS_URL", "redis://env:2/");
            jail.set_env("ONBOARD_IOT__APP_SECRET", "s3cret");
            jail.set_env("ONBOARD_LOG", "debug");
            let cfg = Config::load(Some(Path::new("onboard.toml"))).expect("loads");
            assert_eq!(cfg.redis_url, "redis://env:2/");
            assert_eq!(cfg.limits.iot, 7.0);
            assert_eq!(cfg.limits.polyv, 100.0);
            assert_eq!(cfg.queue.max_attempts.get(JobKind::RegisterUser), 6);
            assert_eq!(cfg.iot.app_secret.expose(), "s3cret");
            Ok(())
        });
    }

    #[test]
    fn a_prefetch_past_its_bound_is_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ONBOARD_QUEUE__PREFETCH", "50");
            assert_eq!(Config::load(None).expect("loads").queue.prefetch, 50);
            jail.set_env("ONBOARD_QUEUE__PREFETCH", "1001");
            let e = Config::load(None).expect_err("refused").to_string();
            assert!(e.contains("queue.prefetch is 1001, at most 1000"), "{e}");
            Ok(())
        });
    }

    /// Loads the configuration with `var` set, as a command would.
    fn loads_with(var: &str) {
        figment::Jail::expect_with(|jail| {
            jail.set_env(var, "Passw0rd!x");
            let cfg = Config::load(None);
            assert!(cfg.is_ok(), "{var}: {:?}", cfg.err());
            Ok(())
        });
    }

    #[test]
    fn the_account_password_variable_is_not_a_config_key() {
        loads_with("ONBOARD_ACCOUNT_PASSWORD");
    }

    #[test]
    fn the_user_password_variable_is_not_a_config_key() {
        loads_with("ONBOARD_USER_PASSWORD");
    }

    #[test]
    fn unknown_key_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[limits]\nio = 3.0\n")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(err.to_string().contains("io"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/onboard.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
