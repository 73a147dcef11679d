//! Which token enqueued each job over HTTP, kept in Redis for the retention
//! (`onboard:api:owner:<job id>`). An `app` token reads, follows and supplies codes only to
//! its own jobs (another's answer 404, as if there were none); an `operator` token to any.
//! The webhook dispatcher reads the same map to find a job's webhook.

use super::auth::Caller;
use super::errors::{ApiError, ErrorCode};
use onboard_shared::config::ApiRole;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

fn key(job_id: &str) -> String {
    format!("onboard:api:owner:{job_id}")
}

/// The owner map.
#[derive(Clone)]
pub struct Owners {
    conn: ConnectionManager,
    retention_secs: u64,
}

impl Owners {
    /// Connects to the Redis at `redis_url`; owners are kept `retention_secs`.
    pub async fn connect(redis_url: &str, retention_secs: u64) -> redis::RedisResult<Owners> {
        let client = redis::Client::open(redis_url)?;
        Ok(Owners {
            conn: ConnectionManager::new(client).await?,
            retention_secs,
        })
    }

    /// Records that `token` enqueued the jobs `ids`.
    pub async fn record(&self, ids: &[String], token: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        for chunk in ids.chunks(2_000) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.set_ex(key(id), token, self.retention_secs).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
        }
        Ok(())
    }

    /// The token that enqueued `job_id` over HTTP, if one did.
    pub async fn owner(&self, job_id: &str) -> redis::RedisResult<Option<String>> {
        self.conn.clone().get(key(job_id)).await
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
