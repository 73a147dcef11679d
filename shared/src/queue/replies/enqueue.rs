//! `enqueue.lua`'s and `idem_lookup.lua`'s replies: what an enqueue did with each job, and
//! who holds each idempotency key asked about.

use super::{protocol, value_bytes, value_string, value_u64};
use crate::queue::store::QueueError;
use redis::Value;

/// One job's answer in an `enqueue.lua` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::queue) enum EnqueueReply {
    /// Written: this is its id.
    New(String),
    /// The key held a job with the same payload: that job's id.
    Duplicate(String),
    /// The key held a job with another payload; nothing was written.
    Conflict { first_id: String, state: String },
}

/// `enqueue.lua`: per job, the id that stands for it, `0|1|2` (new, duplicate, conflict)
/// and, on a conflict, the first job's state.
pub(in crate::queue) fn enqueued(
    reply: &[Value],
    jobs: usize,
) -> Result<Vec<EnqueueReply>, QueueError> {
    if reply.len() != jobs * 3 {
        return Err(protocol("enqueue reply length"));
    }
    reply
        .chunks(3)
        .map(|job| {
            let id = value_string(&job[0])?;
            Ok(match value_u64(&job[1])? {
                0 => EnqueueReply::New(id),
                1 => EnqueueReply::Duplicate(id),
                2 => EnqueueReply::Conflict {
                    first_id: id,
                    state: value_string(&job[2])?,
                },
                other => return Err(protocol(format!("enqueue answered {other}"))),
            })
        })
        .collect()
}

/// `idem_lookup.lua`: per key asked, the first job's id and its payload digest (`None`:
/// stored without one, matching any payload), or `None` when the key is unused.
pub(in crate::queue) type IdemHolder = Option<(String, Option<Vec<u8>>)>;

/// Decodes `idem_lookup.lua`'s reply for `n` keys.
pub(in crate::queue) fn idem_holders(
    reply: &[Value],
    n: usize,
) -> Result<Vec<IdemHolder>, QueueError> {
    if reply.len() != 2 * n {
        return Err(protocol(format!(
            "idem_lookup answered {} values for {n} keys",
            reply.len()
        )));
    }
    reply
        .chunks(2)
        .map(|pair| {
            let id = value_string(&pair[0])?;
            let digest = value_bytes(&pair[1])?;
            Ok((!id.is_empty()).then(|| (id, (!digest.is_empty()).then_some(digest))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn enqueue_replies_tell_new_duplicate_and_conflict_apart() {
        let reply = [
            s("cust_1"),
            Value::Int(0),
            s(""),
            s("cust_0"),
            Value::Int(1),
            s(""),
            s("cust_0"),
            Value::Int(2),
            s("running"),
        ];
        assert_eq!(
            enqueued(&reply, 3).unwrap(),
            [
                EnqueueReply::New("cust_1".into()),
                EnqueueReply::Duplicate("cust_0".into()),
                EnqueueReply::Conflict {
                    first_id: "cust_0".into(),
                    state: "running".into()
                }
            ]
        );
        assert!(enqueued(&reply, 2).is_err());
        assert_eq!(
            idem_holders(&[s("cust_1"), s("ab"), s("cust_2"), s(""), s(""), s("")], 3).unwrap(),
            vec![
                Some(("cust_1".into(), Some(b"ab".to_vec()))),
                Some(("cust_2".into(), None)),
                None
            ]
        );
        assert!(idem_holders(&[s("cust_1")], 1).is_err());
    }
}
