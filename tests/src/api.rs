//! A running `onboard-producer serve` for the HTTP API tests, configured with the tokens a
//! test names (their hashes written to a private TOML file), on the sandbox profile.

use onboard_harness::{ApiServerProcess, RedisServer};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// One token the server accepts.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// Its name (the source of its jobs).
    pub name: String,
    /// The token itself (the server keeps only its hash).
    pub token: String,
    /// The kinds it may enqueue.
    pub kinds: Vec<String>,
    /// `app` or `operator`.
    pub role: String,
    /// Its own rate and burst.
    pub rate: Option<(u32, u32)>,
    /// A webhook URL and signing secret.
    pub webhook: Option<(String, String)>,
}

impl TokenSpec {
    /// A token for every kind.
    pub fn new(name: &str, role: &str) -> TokenSpec {
        TokenSpec {
            name: name.into(),
            token: format!("tok-{name}-secret"),
            kinds: onboard_shared::jobs::JobKind::ALL
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            role: role.into(),
            rate: None,
            webhook: None,
        }
    }

    /// Only these kinds.
    pub fn kinds(mut self, kinds: &[&str]) -> TokenSpec {
        self.kinds = kinds.iter().map(|k| k.to_string()).collect();
        self
    }

    /// With its own rate (requests per second) and burst.
    pub fn rate(mut self, per_sec: u32, burst: u32) -> TokenSpec {
        self.rate = Some((per_sec, burst));
        self
    }

    /// With a webhook.
    pub fn webhook(mut self, url: &str, secret: &str) -> TokenSpec {
        self.webhook = Some((url.into(), secret.into()));
        self
    }
}

/// A running API server (killed on drop).
pub struct ApiServer {
    process: ApiServerProcess,
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ApiServer {
    /// Starts the server against `redis` with `tokens`; `api_extra` are more `[api]` lines
    /// (e.g. `rate_per_sec = 5`).
    pub fn start(redis: &RedisServer, tokens: &[TokenSpec], api_extra: &str) -> ApiServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut toml = format!(
            "profile = \"sandbox\"\nredis_url = \"{}\"\n[api]\n{api_extra}\n",
            redis.url()
        );
        for t in tokens {
            let hash = hex::encode(Sha256::digest(t.token.as_bytes()));
            let kinds: Vec<String> = t.kinds.iter().map(|k| format!("{k:?}")).collect();
            let _ = write!(
                toml,
                "[[api.tokens]]\nname = {:?}\nsha256 = \"{hash}\"\nkinds = [{}]\nrole = {:?}\n",
                t.name,
                kinds.join(", "),
                t.role
            );
            if let Some((per_sec, burst)) = t.rate {
                let _ = writeln!(toml, "rate_per_sec = {per_sec}\nburst = {burst}");
            }
            if let Some((url, secret)) = &t.webhook {
                let _ = write!(
                    toml,
                    "[api.tokens.webhook]\nurl = {url:?}\nsecret = {secret:?}\n"
                );
            }
        }
        let path = dir.path().join("onboard.toml");
        std::fs::write(&path, toml).expect("write the server's config");
        let process = ApiServerProcess::start(&path).unwrap_or_else(|e| panic!("{e}"));
        ApiServer {
            process,
            config: path,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// Its configuration file (for the CLI to run with the same tokens).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.process.process.log()
    }
}
