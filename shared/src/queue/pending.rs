//! Jobs enqueued in bulk that no worker has claimed yet.
//!
//! A job due now with no parent gets no hash of its own at enqueue: its payload and metadata
//! wait in the queue's `pending` hash (field = job id) until fetch claims it and builds its
//! record. One variadic HSET per enqueue call instead of one hash per job is what makes bulk
//! enqueue fast. `enqueue.lua` writes the entries, `fetch.lua` takes them (`pending_record`
//! and `parse_pending` in `common.lua` define the format); this module reads it for `status`.

/// What `status` reports of a pending job (it is queued, with no attempt yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingEntry {
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it was enqueued (Unix ms).
    pub created_ms: u64,
}

impl PendingEntry {
    /// Parses `max_attempts|created_ms|idempotency key|payload`; `None` when malformed.
    pub(crate) fn parse(raw: &[u8]) -> Option<PendingEntry> {
        let mut parts = raw.splitn(4, |b| *b == b'|');
        let number = |part: Option<&[u8]>| std::str::from_utf8(part?).ok()?.parse::<u64>().ok();
        let max_attempts = number(parts.next())?;
        let created_ms = number(parts.next())?;
        parts.next()?;
        parts.next()?;
        Some(PendingEntry {
            max_attempts: u32::try_from(max_attempts).ok()?,
            created_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_entry_enqueue_writes() {
        let e = PendingEntry::parse(b"5|1732300000000|ab12|\x00bin|ary").unwrap();
        assert_eq!(
            e,
            PendingEntry {
                max_attempts: 5,
                created_ms: 1_732_300_000_000
            }
        );
        assert_eq!(PendingEntry::parse(b"3|7||").map(|e| e.created_ms), Some(7));
    }

    #[test]
    fn refuses_malformed_entries() {
        for raw in [&b""[..], b"5", b"5|x|k|p", b"5|7|k", b"99999999999|7|k|p"] {
            assert_eq!(PendingEntry::parse(raw), None, "{:?}", raw);
        }
    }
}
