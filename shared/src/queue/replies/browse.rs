//! Replies of the console's reads: `job_rows.lua`'s rows and the `history` field of a job's
//! record (written by `common.lua`'s `history_line`).

use super::{children, first_str, protocol, refusal, value_string, value_u64, ChildRef, Verdict};
use crate::queue::browse::{HistoryEntry, JobRow, RowState};
use crate::queue::store::QueueError;
use crate::queue::{ErrorRecord, JobState, Lane};
use redis::Value;

/// `job_rows.lua`: 9 values per job.
pub(in crate::queue) fn job_rows(reply: &[Value]) -> Result<Vec<JobRow>, QueueError> {
    if !reply.len().is_multiple_of(9) {
        return Err(protocol("job_rows reply length"));
    }
    reply
        .chunks(9)
        .map(|r| {
            let state = match value_string(&r[1])?.as_str() {
                "missing" => RowState::Missing,
                "malformed" => RowState::Malformed,
                other => JobState::parse(other).map_or(RowState::Malformed, RowState::Is),
            };
            let number = |v: &Value| value_u64(v).unwrap_or(0);
            let text = |v: &Value| value_string(v).ok().filter(|s| !s.is_empty());
            Ok(JobRow {
                id: value_string(&r[0])?,
                state,
                attempts: u32::try_from(number(&r[2])).unwrap_or(u32::MAX),
                max_attempts: u32::try_from(number(&r[3])).unwrap_or(u32::MAX),
                created_ms: number(&r[4]),
                updated_ms: number(&r[5]),
                lane: text(&r[6]).and_then(|l| l.parse::<Lane>().ok()),
                source: text(&r[7]),
                error: text(&r[8]).and_then(|e| ErrorRecord::parse(&e)),
            })
        })
        .collect()
}

/// `cancel_job.lua`: `{'ok', dependent refs...}` or a refusal.
pub(in crate::queue) fn cancelled_one(
    reply: &[Value],
) -> Result<Verdict<Vec<ChildRef>>, QueueError> {
    if let Some(refused) = refusal(reply)? {
        return Ok(refused);
    }
    match first_str(reply)?.as_str() {
        "ok" => Ok(Verdict::Done(children(&reply[1..]))),
        other => Err(protocol(format!("cancel_job replied {other}"))),
    }
}

/// A record's `history` field: one line per change, `at_ms \t state [\t field \t value]`.
/// A line that does not parse is left out (a history is for people; it never fails a page).
pub(in crate::queue) fn history(text: &str) -> Vec<HistoryEntry> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, '\t');
            let at_ms = parts.next()?.parse().ok()?;
            let state = JobState::parse(parts.next()?)?;
            let mut entry = HistoryEntry {
                at_ms,
                state,
                attempt: None,
                error: None,
                reason: None,
            };
            match (parts.next(), parts.next()) {
                (Some("attempt"), Some(n)) => entry.attempt = n.parse().ok(),
                (Some("error"), Some(json)) => entry.error = ErrorRecord::parse(json),
                (Some(_), Some(reason)) => entry.reason = Some(reason.to_string()),
                _ => {}
            }
            Some(entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lines_become_entries_and_bad_lines_are_left_out() {
        let text = "1000\tqueued\n1001\trunning\tattempt\t1\n\
                    1002\tretry_scheduled\terror\t{\"class\":\"transient\",\"code\":\"E1\",\"message\":\"m\"}\n\
                    nonsense\n1003\tqueued\treason\tdead letter retried\n";
        let h = history(text);
        assert_eq!(h.len(), 4);
        assert_eq!(h[1].attempt, Some(1));
        assert_eq!(h[2].error.as_ref().map(|e| e.code.as_str()), Some("E1"));
        assert_eq!(h[3].reason.as_deref(), Some("dead letter retried"));
        assert_eq!(h[3].state, JobState::Queued);
    }
}
