//! Which token enqueued each job over HTTP, kept in Redis for the retention
//! (`onboard:{<provider>}:api:owner:<job id>`: with the job's provider's hash tag, so that
//! one pipeline per provider records a batch on a Redis Cluster too). An `app` token reads, follows and supplies codes only to
//! its own jobs (another's answer 404, as if there were none); an `operator` token to any.
//! The webhook dispatcher reads the same map to find a job's webhook.

use super::auth::Caller;
use super::errors::{ApiError, ErrorCode};
use onboard_shared::config::ApiRole;
use onboard_shared::providers::Provider;
use onboard_shared::queue::ids::kind_of_id;
use onboard_shared::queue::keys::ProviderKeys;
use onboard_shared::redis_link::RedisConnection;
use redis::AsyncCommands;
use std::collections::BTreeMap;

/// The owner key of `job_id`, in its provider's slot (None for what is not a job id).
fn key(job_id: &str) -> Option<(Provider, String)> {
    let provider = kind_of_id(job_id)?.provider();
    let prefix = ProviderKeys::new(provider).prefix().to_string();
    Some((provider, format!("{prefix}api:owner:{job_id}")))
}

/// The owner map.
#[derive(Clone)]
pub struct Owners {
    conn: RedisConnection,
    retention_secs: u64,
}

impl Owners {
    /// The map on `conn` (the job store's connection: one server or a cluster); owners are
    /// kept `retention_secs`.
    pub fn new(conn: RedisConnection, retention_secs: u64) -> Owners {
        Owners {
            conn,
            retention_secs,
        }
    }

    /// Records that `token` enqueued the jobs `ids`: one pipeline per provider and chunk.
    pub async fn record(&self, ids: &[String], token: &str) -> redis::RedisResult<()> {
        let mut by_provider: BTreeMap<Provider, Vec<String>> = BTreeMap::new();
        for (provider, key) in ids.iter().filter_map(|id| key(id)) {
            by_provider.entry(provider).or_default().push(key);
        }
        let mut conn = self.conn.clone();
        for keys in by_provider.values() {
            for chunk in keys.chunks(2_000) {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.set_ex(key, token, self.retention_secs).ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// The token that enqueued `job_id` over HTTP, if one did.
    pub async fn owner(&self, job_id: &str) -> redis::RedisResult<Option<String>> {
        match key(job_id) {
            Some((_, key)) => self.conn.clone().get(key).await,
            None => Ok(None),
        }
    }

    /// 404 unless `caller` is an operator or enqueued `job_id`.
    pub async fn check(&self, caller: &Caller, job_id: &str) -> Result<(), ApiError> {
        if caller.0.role == ApiRole::Operator {
            return Ok(());
        }
        let owner = self
            .owner(job_id)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("redis: {e}")))?;
        if owner.as_deref() == Some(caller.0.name.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no job {job_id} enqueued with this token"),
            ))
        }
    }
}
