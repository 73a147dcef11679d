//! The webhook outbox in Redis: the place in each events stream the dispatcher has handled, and the
//! deliveries still to make, due times in a sorted set. Every key shares the hash tag `{onboard:webhooks}`.
//!
//! A delivery is keyed by its event id and created only once (`SET NX`; a delivered one
//! leaves a marker for the retention), so re-reading events does not duplicate it; it is claimed with a lease (its due time
//! moved past the attempt), so a server that dies mid-attempt leaves it to be retried.

use onboard_shared::redis_link::RedisConnection;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const PREFIX: &str = "{onboard:webhooks}";

fn key(rest: &str) -> String {
    format!("{PREFIX}:{rest}")
}

/// One event to deliver to one token's webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// The event id (`evt_<stream id>_<job id>`): the receiver deduplicates on it.
    pub id: String,
    /// The token whose webhook it goes to.
    pub token: String,
    /// The JSON body, as signed.
    pub body: String,
    /// Attempts made.
    pub attempts: u32,
}

/// The outbox.
#[derive(Clone)]
pub struct Outbox {
    conn: RedisConnection,
    retention_secs: u64,
}

/// Moves a due delivery's time to the lease's end; 1 when this caller claimed it.
const CLAIM: &str = r"
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if due and tonumber(due) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0";

impl Outbox {
    /// The outbox on `conn` (the job store's connection: one server or a cluster; all its
    /// keys share one hash tag); delivered markers and given-up deliveries are kept
    /// `retention_secs`.
    pub fn new(conn: RedisConnection, retention_secs: u64) -> Outbox {
        Outbox {
            conn,
            retention_secs,
        }
    }

    /// The last id handled in each events stream (stream key -> id).
    pub async fn cursors(&self) -> redis::RedisResult<HashMap<String, String>> {
        self.conn.clone().hgetall(key("cursors")).await
    }

    /// Records the last id handled in each of the streams `handled` names.
    pub async fn set_cursors(&self, handled: &HashMap<String, String>) -> redis::RedisResult<()> {
        if handled.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(&String, &String)> = handled.iter().collect();
        self.conn
            .clone()
            .hset_multiple(key("cursors"), &pairs)
            .await
    }

    /// Adds a delivery due now, unless one with its id exists; true when added.
    pub async fn add(&self, d: &Delivery, now_ms: u64) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(d).map_err(io_error)?;
        let added: bool = redis::cmd("SET")
            .arg(key(&format!("delivery:{}", d.id)))
            .arg(json)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if added {
            let _: () = redis::cmd("ZADD")
                .arg(key("due"))
                .arg("NX")
                .arg(now_ms)
                .arg(&d.id)
                .query_async(&mut conn)
                .await?;
        }
        Ok(added)
    }

    /// Claims up to `max` due deliveries for `lease_ms`.
    pub async fn claim_due(
        &self,
        now_ms: u64,
        lease_ms: u64,
        max: usize,
    ) -> redis::RedisResult<Vec<Delivery>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrangebyscore_limit(key("due"), "-inf", now_ms, 0, max as isize)
            .await?;
        let script = redis::Script::new(CLAIM);
        let mut out = Vec::new();
        for id in ids {
            let claimed: i64 = script
                .key(key("due"))
                .arg(&id)
                .arg(now_ms)
                .arg(now_ms + lease_ms)
                .invoke_async(&mut conn)
                .await?;
            if claimed != 1 {
                continue;
            }
            let json: Option<String> = conn.get(key(&format!("delivery:{id}"))).await?;
            match json.and_then(|j| serde_json::from_str::<Delivery>(&j).ok()) {
                Some(d) => out.push(d),
                None => {
                    let _: () = conn.zrem(key("due"), &id).await?;
                }
            }
        }
        Ok(out)
    }

    /// A delivery the receiver took: off the schedule, its record a marker for the
    /// retention, so the same event read again is not delivered again.
    pub async fn done(&self, id: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: () = conn.zrem(key("due"), id).await?;
        conn.set_ex(key(&format!("delivery:{id}")), "sent", self.retention_secs)
            .await
    }

    /// A failed delivery, to be tried again at `at_ms`.
    pub async fn retry(&self, d: &Delivery, at_ms: u64) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(d).map_err(io_error)?;
        let _: () = conn.set(key(&format!("delivery:{}", d.id)), json).await?;
        conn.zadd(key("due"), &d.id, at_ms).await
    }

    /// A delivery given up after its last attempt: kept on the dead list (and its record
    /// for the retention) for an operator to look at.
    pub async fn give_up(&self, d: &Delivery) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(d).map_err(io_error)?;
        let _: () = conn.zrem(key("due"), &d.id).await?;
        let _: () = conn
            .set_ex(
                key(&format!("delivery:{}", d.id)),
                json,
                self.retention_secs,
            )
            .await?;
        conn.lpush(key("dead"), &d.id).await
    }
}

fn io_error(e: serde_json::Error) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "encoding a delivery", e.to_string()))
}
