//! The webhook outbox in Redis: the events-stream cursor the dispatcher has handled, and the
//! deliveries still to make, due times in a sorted set. Every key shares the hash tag `{onboard:webhooks}`.
//!
//! A delivery is keyed by its event id and created only once (`SET NX`; a delivered one
//! leaves a marker for the retention), so re-reading events does not duplicate it; it is claimed with a lease (its due time
//! moved past the attempt), so a server that dies mid-attempt leaves it to be retried.

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "{onboard:webhooks}";

fn key(rest: &str) -> String {
    format!("{PREFIX}:{rest}")
}

/// One event to deliver to one token's webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// The event id (`evt_<stream id>`): the receiver deduplicates on it.
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
    conn: ConnectionManager,
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
    /// Connects to the Redis at `redis_url`; delivered markers and given-up deliveries are
    /// kept `retention_secs`.
    pub async fn connect(redis_url: &str, retention_secs: u64) -> redis::RedisResult<Outbox> {
        let client = redis::Client::open(redis_url)?;
        Ok(Outbox {
            conn: ConnectionManager::new(client).await?,
            retention_secs,
        })
    }

    /// The last events-stream id handled.
    pub async fn cursor(&self) -> redis::RedisResult<Option<String>> {
        self.conn.clone().get(key("cursor")).await
    }

    /// Records the last events-stream id handled.
    pub async fn set_cursor(&self, id: &str) -> redis::RedisResult<()> {
        self.conn.clone().set(key("cursor"), id).await
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
