//! Every script's reply, decoded once into a typed value. Each script's header comment
//! (in `scripts/*.lua`) documents its reply; the decoder of that reply here is the only
//! Rust code that knows its shape and the strings in it.

mod browse;
mod enqueue;
mod fetch;

pub(super) use browse::{cancelled_one, history, job_rows};
pub(super) use enqueue::{enqueued, idem_holders, EnqueueReply};
pub(super) use fetch::{FetchReply, FetchedRow, MalformedRow};

use super::ack::AckStatus;
use super::store::QueueError;
use crate::jobs::JobKind;
use redis::Value;

pub(super) fn protocol(what: impl Into<String>) -> QueueError {
    QueueError::Protocol(what.into())
}

pub(super) fn value_bytes(v: &Value) -> Result<Vec<u8>, QueueError> {
    match v {
        Value::BulkString(b) => Ok(b.clone()),
        Value::SimpleString(s) => Ok(s.as_bytes().to_vec()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        Value::Nil => Ok(Vec::new()),
        other => Err(protocol(format!("expected bytes, got {other:?}"))),
    }
}

pub(super) fn value_string(v: &Value) -> Result<String, QueueError> {
    String::from_utf8(value_bytes(v)?).map_err(|_| protocol("non-UTF-8 text"))
}

pub(super) fn value_u64(v: &Value) -> Result<u64, QueueError> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| protocol(format!("negative number {i}"))),
        other => value_string(other)?
            .parse()
            .map_err(|_| protocol(format!("expected a number, got {other:?}"))),
    }
}

fn first_str(reply: &[Value]) -> Result<String, QueueError> {
    reply
        .first()
        .map(value_string)
        .transpose()?
        .ok_or_else(|| protocol("empty script reply"))
}

/// A job waiting on another, as the parent's `deps:<id>` set names it: `kind|id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChildRef {
    pub kind: JobKind,
    pub id: String,
}

impl ChildRef {
    /// How a child is written into its parent's set.
    pub(super) fn encode(kind: JobKind, id: &str) -> String {
        format!("{}|{id}", kind.as_str())
    }

    /// `None` for a member that is not `kind|id` (it is skipped: nothing can resolve it).
    fn decode(v: &Value) -> Option<ChildRef> {
        let text = value_string(v).ok()?;
        let (kind, id) = text.split_once('|')?;
        Some(ChildRef {
            kind: kind.parse().ok()?,
            id: id.to_string(),
        })
    }
}

fn children(values: &[Value]) -> Vec<ChildRef> {
    values.iter().filter_map(ChildRef::decode).collect()
}

/// `ack.lua` and `quarantine.lua` (one job), `ack_succeeded.lua` (per job).
#[derive(Debug)]
pub(super) struct AckReply {
    pub status: AckStatus,
    /// Jobs waiting on this one, to resolve in their own queues (when it ended).
    pub dependents: Vec<ChildRef>,
}

fn ack_status(label: &str) -> Result<AckStatus, QueueError> {
    Ok(match label {
        "succeeded" => AckStatus::Succeeded,
        "retry" => AckStatus::Retry,
        "deferred" => AckStatus::Deferred,
        "dead" => AckStatus::Dead,
        "awaiting_code" => AckStatus::AwaitingCode,
        "released" => AckStatus::Released,
        "stale" => AckStatus::Stale,
        other => return Err(protocol(format!("ack answered {other}"))),
    })
}

impl AckReply {
    /// `{status, dependent refs...}`.
    pub(super) fn decode(reply: &[Value]) -> Result<AckReply, QueueError> {
        Ok(AckReply {
            status: ack_status(&first_str(reply)?)?,
            dependents: children(&reply[1..]),
        })
    }

    /// Per job `status, number of dependents, dependent refs...`, for `jobs` jobs.
    pub(super) fn decode_batch(reply: &[Value], jobs: usize) -> Result<Vec<AckReply>, QueueError> {
        let short = || protocol("ack_succeeded reply too short");
        let mut rest = reply;
        let mut out = Vec::with_capacity(jobs);
        for _ in 0..jobs {
            let [status, count, tail @ ..] = rest else {
                return Err(short());
            };
            let count = value_u64(count)? as usize;
            let (deps, tail) = tail.split_at_checked(count).ok_or_else(short)?;
            rest = tail;
            out.push(AckReply {
                status: ack_status(&value_string(status)?)?,
                dependents: children(deps),
            });
        }
        Ok(out)
    }
}

/// `add_dependent.lua`: where the parent stands.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ParentState {
    /// Not ended: the child was registered and will be resolved when it ends.
    Pending,
    Succeeded,
    /// Ended without success, in this state.
    Failed(String),
    Missing,
}

impl ParentState {
    pub(super) fn decode(reply: &[Value]) -> Result<ParentState, QueueError> {
        Ok(match first_str(reply)?.as_str() {
            "pending" => ParentState::Pending,
            "succeeded" => ParentState::Succeeded,
            "failed" => ParentState::Failed(
                reply
                    .get(1)
                    .map(value_string)
                    .transpose()?
                    .unwrap_or_default(),
            ),
            "missing" => ParentState::Missing,
            other => return Err(protocol(format!("add_dependent answered {other}"))),
        })
    }
}

/// `expire_codes.lua`: how many expired, and the jobs that waited on them.
#[derive(Debug)]
pub(super) struct ExpiredReply {
    pub count: u64,
    pub dependents: Vec<ChildRef>,
}

impl ExpiredReply {
    pub(super) fn decode(reply: &[Value]) -> Result<ExpiredReply, QueueError> {
        let [count, deps @ ..] = reply else {
            return Err(protocol("expire_codes reply too short"));
        };
        Ok(ExpiredReply {
            count: value_u64(count)?,
            dependents: children(deps),
        })
    }
}

/// `resolve_dependency.lua`: the dependents of a child it cancelled (none otherwise).
pub(super) fn cancelled_dependents(reply: &[Value]) -> Result<Vec<ChildRef>, QueueError> {
    Ok(match first_str(reply)?.as_str() {
        "cancelled" => children(&reply[1..]),
        "queued" | "scheduled" | "dead" | "noop" => Vec::new(),
        other => return Err(protocol(format!("resolve_dependency answered {other}"))),
    })
}

/// `cancel_batch.lua`.
#[derive(Debug)]
pub(super) struct CancelReply {
    pub cancelled: u64,
    pub remaining: u64,
    pub dependents: Vec<ChildRef>,
}

impl CancelReply {
    pub(super) fn decode(reply: &[Value]) -> Result<CancelReply, QueueError> {
        let [cancelled, remaining, deps @ ..] = reply else {
            return Err(protocol("cancel_batch reply too short"));
        };
        Ok(CancelReply {
            cancelled: value_u64(cancelled)?,
            remaining: value_u64(remaining)?,
            dependents: children(deps),
        })
    }
}

/// `recheck_waiting.lua`: children still waiting, with their parent ('' for none).
pub(super) fn still_waiting(reply: &[Value]) -> Result<Vec<(String, String)>, QueueError> {
    if !reply.len().is_multiple_of(2) {
        return Err(protocol("recheck_waiting reply length"));
    }
    reply
        .chunks(2)
        .map(|pair| Ok((value_string(&pair[0])?, value_string(&pair[1])?)))
        .collect()
}

/// `read_job.lua`: one job as stored.
#[derive(Debug)]
pub(super) enum StoredJob {
    /// Its record's fields.
    Record(std::collections::HashMap<String, Vec<u8>>),
    /// Enqueued in bulk, not claimed yet: its `pending` entry.
    Pending(Vec<u8>),
    Missing,
    /// Its record cannot be read; why.
    Malformed(String),
}

impl StoredJob {
    pub(super) fn decode(reply: &[Value]) -> Result<StoredJob, QueueError> {
        match first_str(reply)?.as_str() {
            "record" => {
                let rest = &reply[1..];
                if !rest.len().is_multiple_of(2) {
                    return Err(protocol("read_job record length"));
                }
                let fields = rest
                    .chunks(2)
                    .map(|p| Ok((value_string(&p[0])?, value_bytes(&p[1])?)))
                    .collect::<Result<_, QueueError>>()?;
                Ok(StoredJob::Record(fields))
            }
            "pending" => Ok(StoredJob::Pending(value_bytes(
                reply.get(1).ok_or_else(|| protocol("read_job: no entry"))?,
            )?)),
            "missing" => Ok(StoredJob::Missing),
            "malformed" => Ok(StoredJob::Malformed(
                reply
                    .get(1)
                    .map(value_string)
                    .transpose()?
                    .unwrap_or_default(),
            )),
            other => Err(protocol(format!("read_job answered {other}"))),
        }
    }
}

/// `queue_stats.lua`, in its order.
#[derive(Debug)]
pub(super) struct StatsReply {
    pub waiting: u64,
    pub queued: u64,
    pub queued_live: u64,
    pub queued_bulk: u64,
    pub running: u64,
    pub scheduled: u64,
    pub awaiting: u64,
    pub dead: u64,
    pub enqueued: u64,
    pub succeeded: u64,
    pub expired: u64,
    pub cancelled: u64,
    pub leases_expired: u64,
    pub started: u64,
    pub oldest_ready_age_ms: u64,
    pub paused: bool,
    /// Queue keys of the wrong type (counted as empty).
    pub malformed_keys: Vec<String>,
}

impl StatsReply {
    pub(super) fn decode(reply: &[Value]) -> Result<StatsReply, QueueError> {
        let [waiting, queued, queued_live, queued_bulk, running, scheduled, awaiting, dead, enqueued, succeeded, expired, cancelled, leases_expired, started, age, paused, bad @ ..] =
            reply
        else {
            return Err(protocol("queue_stats reply too short"));
        };
        Ok(StatsReply {
            waiting: value_u64(waiting)?,
            queued: value_u64(queued)?,
            queued_live: value_u64(queued_live)?,
            queued_bulk: value_u64(queued_bulk)?,
            running: value_u64(running)?,
            scheduled: value_u64(scheduled)?,
            awaiting: value_u64(awaiting)?,
            dead: value_u64(dead)?,
            enqueued: value_u64(enqueued)?,
            succeeded: value_u64(succeeded)?,
            expired: value_u64(expired)?,
            cancelled: value_u64(cancelled)?,
            leases_expired: value_u64(leases_expired)?,
            started: value_u64(started)?,
            oldest_ready_age_ms: value_u64(age)?,
            paused: value_u64(paused)? == 1,
            malformed_keys: bad.iter().map(value_string).collect::<Result<_, _>>()?,
        })
    }
}

/// A script's answer to a request about one job: done, or refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict<T> {
    Done(T),
    /// No such job.
    NotFound,
    /// The job's state does not allow it.
    WrongState(String),
}

/// `{'wrong_state', state}` (state `missing` for no job), or the script's own answer.
fn refusal<T>(reply: &[Value]) -> Result<Option<Verdict<T>>, QueueError> {
    if first_str(reply)? != "wrong_state" {
        return Ok(None);
    }
    let state = reply
        .get(1)
        .map(value_string)
        .transpose()?
        .unwrap_or_default();
    Ok(Some(if state == "missing" {
        Verdict::NotFound
    } else {
        Verdict::WrongState(state)
    }))
}

/// `{'ok'}` or a refusal: `supply_code.lua`, `resend_code.lua`, `dead_purge.lua`.
pub(super) fn done(reply: &[Value]) -> Result<Verdict<()>, QueueError> {
    if let Some(refused) = refusal(reply)? {
        return Ok(refused);
    }
    match first_str(reply)?.as_str() {
        "ok" => Ok(Verdict::Done(())),
        other => Err(protocol(format!("script answered {other}"))),
    }
}

/// Where `dead_retry.lua` sent a dead job.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Revived {
    Queued,
    /// Back to waiting on this parent.
    Waiting(String),
}

/// `{'queued'}`, `{'waiting', parent}` or a refusal.
pub(super) fn revived(reply: &[Value]) -> Result<Verdict<Revived>, QueueError> {
    if let Some(refused) = refusal(reply)? {
        return Ok(refused);
    }
    match first_str(reply)?.as_str() {
        "queued" => Ok(Verdict::Done(Revived::Queued)),
        "waiting" => Ok(Verdict::Done(Revived::Waiting(value_string(
            reply
                .get(1)
                .ok_or_else(|| protocol("dead_retry: no parent"))?,
        )?))),
        other => Err(protocol(format!("dead_retry answered {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::options::Lane;

    fn s(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_bad_number_makes_one_row_malformed_not_the_reply() {
        let row = |attempts: &str| {
            vec![
                s("cust_1"),
                s("payload"),
                s(attempts),
                s("3"),
                s("tok"),
                s("0"),
                s(""),
                s(""),
                s("0"),
                s("bulk"),
                Value::Int(40),
                s("1733300000000"),
            ]
        };
        let mut reply = vec![
            Value::Int(5),
            Value::Int(0),
            Value::Int(2),
            s("1733300001500"),
        ];
        reply.extend(row("1"));
        reply.extend(row("x"));
        let fetched = FetchReply::decode(&reply).unwrap();
        assert_eq!(fetched.wait_ms, 5);
        let first = fetched.rows[0].as_ref().unwrap();
        assert_eq!(
            (first.attempt, first.lane, first.delay_us, first.waited_ms),
            (1, Lane::Bulk, 40, 1500)
        );
        let bad = fetched.rows[1].as_ref().unwrap_err();
        assert_eq!((bad.id.as_str(), bad.token.as_str()), ("cust_1", "tok"));
        assert!(bad.reason.contains("attempts"), "{}", bad.reason);
    }

    #[test]
    fn verdicts() {
        assert_eq!(done(&[s("ok")]).unwrap(), Verdict::Done(()));
        assert_eq!(
            done(&[s("wrong_state"), s("missing")]).unwrap(),
            Verdict::NotFound
        );
        assert_eq!(
            revived(&[s("wrong_state"), s("queued")]).unwrap(),
            Verdict::WrongState("queued".into())
        );
        assert_eq!(
            revived(&[s("waiting"), s("cust_1")]).unwrap(),
            Verdict::Done(Revived::Waiting("cust_1".into()))
        );
    }

    #[test]
    fn ack_batches_carry_their_dependents() {
        let reply = [
            s("succeeded"),
            Value::Int(2),
            s("bind-devices|bind_1"),
            s("garbage"),
            s("stale"),
            Value::Int(0),
        ];
        let acks = AckReply::decode_batch(&reply, 2).unwrap();
        assert_eq!(acks[0].status, AckStatus::Succeeded);
        assert_eq!(
            acks[0].dependents,
            [ChildRef {
                kind: JobKind::BindDevices,
                id: "bind_1".into()
            }]
        );
        assert_eq!(acks[1].status, AckStatus::Stale);
        assert!(AckReply::decode_batch(&reply, 3).is_err());
    }
}
