//! `fetch.lua`'s reply: the claimed jobs, each decoded or found malformed, and how long the
//! fetcher may sleep.

use super::{protocol, value_bytes, value_string, value_u64};
use crate::queue::claimed::CodePhase;
use crate::queue::options::Lane;
use crate::queue::store::QueueError;
use redis::Value;

/// One job of a `fetch.lua` reply whose fields decoded.
#[derive(Debug)]
pub(in crate::queue) struct FetchedRow {
    pub id: String,
    pub token: String,
    /// Ciphertext.
    pub payload: Vec<u8>,
    pub attempt: u32,
    pub max_attempts: u32,
    pub uncertain: bool,
    pub phase: CodePhase,
    /// Ciphertext of the supplied verify code; empty when none.
    pub code: Vec<u8>,
    pub code_failures: u32,
    pub lane: Lane,
    /// How long until its reserved request slot, µs (0 without a limit).
    pub delay_us: u64,
    /// How long it waited since it was enqueued, at the claim.
    pub waited_ms: u64,
}

/// One job of a `fetch.lua` reply that was claimed but cannot be run as it stands.
#[derive(Debug)]
pub(in crate::queue) struct MalformedRow {
    pub id: String,
    pub token: String,
    pub reason: String,
}

/// `fetch.lua`.
#[derive(Debug)]
pub(in crate::queue) struct FetchReply {
    /// How long the fetcher may sleep before something falls due (ms, Redis's clock).
    pub wait_ms: u64,
    /// The limit (or the provider's pause), not a lack of work, stopped the claim.
    pub held_back: bool,
    pub rows: Vec<Result<FetchedRow, MalformedRow>>,
}

/// Values per claimed job in a `fetch.lua` reply.
const FETCH_ROW_LEN: usize = 12;

impl FetchReply {
    pub(in crate::queue) fn decode(reply: &[Value]) -> Result<FetchReply, QueueError> {
        let [wait, held_back, n, now_ms, rows @ ..] = reply else {
            return Err(protocol("fetch reply too short"));
        };
        let n = value_u64(n)? as usize;
        if rows.len() != n * FETCH_ROW_LEN {
            return Err(protocol("fetch reply length"));
        }
        let now_ms = value_u64(now_ms)?;
        Ok(FetchReply {
            wait_ms: value_u64(wait)?,
            held_back: value_u64(held_back)? == 1,
            rows: rows
                .chunks(FETCH_ROW_LEN)
                .map(|row| FetchedRow::decode(row, now_ms))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl FetchedRow {
    /// The order `fetch.lua` writes a claimed job's fields in. A job whose id or token is
    /// unreadable fails the reply (a bug); any other bad field makes that job malformed.
    /// `now_ms` is Redis's clock at the claim: a job's wait is reckoned here from its
    /// creation time, on that clock (an unreadable creation time counts as no wait).
    fn decode(f: &[Value], now_ms: u64) -> Result<Result<FetchedRow, MalformedRow>, QueueError> {
        let [id, payload, attempts, max_attempts, token, uncertain, phase, code, code_failures, lane, delay, created] =
            f
        else {
            return Err(protocol("fetch row length"));
        };
        let (id, token) = (value_string(id)?, value_string(token)?);
        let number = |name: &str, v: &Value| -> Result<u32, String> {
            value_u64(v)
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("field `{name}` of the job record is not a number"))
        };
        let row = (|| {
            Ok(FetchedRow {
                payload: value_bytes(payload).map_err(|e| e.to_string())?,
                attempt: number("attempts", attempts)?,
                max_attempts: number("max_attempts", max_attempts)?,
                uncertain: number("uncertain", uncertain)? == 1,
                phase: match value_string(phase).map_err(|e| e.to_string())?.as_str() {
                    "verify" => CodePhase::Verify,
                    _ => CodePhase::Send,
                },
                code: value_bytes(code).map_err(|e| e.to_string())?,
                code_failures: number("code_failures", code_failures)?,
                lane: value_string(lane)
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(Lane::Live),
                delay_us: value_u64(delay).unwrap_or(0),
                waited_ms: value_u64(created).map_or(0, |c| now_ms.saturating_sub(c)),
                id: id.clone(),
                token: token.clone(),
            })
        })();
        Ok(row.map_err(|reason| MalformedRow { id, token, reason }))
    }
}
