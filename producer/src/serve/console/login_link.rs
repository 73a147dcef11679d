//! One-time login links: `/console/login?once=<code>` opens a session for the operator token
//! the link was made for, once, within [`LINK_SECS`]. The demo prints one for the local
//! sandbox so that nobody copies a token into a form. Redis keeps only the code's SHA-256
//! (`onboard:{console}:login-link:<hash>`, holding the token's name), and redeeming it
//! deletes it in the same command (GETDEL), so two browsers racing for one link get one
//! session between them.

use super::session::{hashed_key, is_random_hex, random_hex};
use onboard_shared::queue::QueueError;
use onboard_shared::redis_link::RedisConnection;
use redis::AsyncCommands;

/// How long a link lasts unused.
pub const LINK_SECS: u64 = 3600;

/// The Redis key of link `code`.
fn key_of(code: &str) -> String {
    hashed_key("login-link", code)
}

/// Makes a link for the operator token named `operator`; returns its code (the `once`
/// value of `/console/login`). Whether the token is an operator's is checked on redemption.
pub async fn create(conn: &RedisConnection, operator: &str) -> Result<String, QueueError> {
    let code = random_hex();
    let mut conn = conn.clone();
    let _: () = conn.set_ex(key_of(&code), operator, LINK_SECS).await?;
    Ok(code)
}

/// Uses link `code` up: the token name it was made for, or `None` when it was never made,
/// was used already or has expired.
pub async fn redeem(conn: &RedisConnection, code: &str) -> Result<Option<String>, QueueError> {
    if !is_random_hex(code) {
        return Ok(None);
    }
    let mut conn = conn.clone();
    Ok(conn.get_del(key_of(code)).await?)
}
