//! Jobs enqueued in bulk that no worker has claimed yet.
//!
//! A job due now with no parent gets no hash of its own at enqueue: its payload and metadata
//! wait in the queue's `pending` hash (field = job id) until fetch claims it and builds its
//! record. One variadic HSET per enqueue call instead of one hash per job is what makes bulk
//! enqueue fast. `enqueue.lua` writes the entries, `fetch.lua` takes them (`pending_record`
//! and `parse_pending` in `lifecycle.lua` define the format); this module reads it for `status`
//! and for `rekey`.

/// What `status` reports of a pending job (it is queued, with no attempt yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingEntry {
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it was enqueued (Unix ms).
    pub created_ms: u64,
}

impl PendingEntry {
    /// Parses an entry (see [`payload_at`]); `None` when malformed.
    pub(crate) fn parse(raw: &[u8]) -> Option<PendingEntry> {
        payload_at(raw)?;
        let mut parts = raw.splitn(3, |b| *b == b'|');
        let number = |part: Option<&[u8]>| std::str::from_utf8(part?).ok()?.parse::<u64>().ok();
        let max_attempts = number(parts.next())?;
        let created_ms = number(parts.next())?;
        Some(PendingEntry {
            max_attempts: u32::try_from(max_attempts).ok()?,
            created_ms,
        })
    }
}

/// Where the sealed payload starts in an entry: `max_attempts|created_ms|` then `#` and
/// the idempotency key's hash (16 bytes) or `-` without one, then the payload; entries
/// written before hold `max_attempts|created_ms|<hash in hex or nothing>|payload`.
/// `None` when malformed.
pub(crate) fn payload_at(raw: &[u8]) -> Option<usize> {
    let a = raw.iter().position(|b| *b == b'|')?;
    let b = a + 1 + raw[a + 1..].iter().position(|b| *b == b'|')?;
    match raw.get(b + 1)? {
        b'-' => Some(b + 2),
        b'#' if raw.len() >= b + 18 => Some(b + 18),
        _ => Some(b + 2 + raw[b + 1..].iter().position(|b| *b == b'|')?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_entry_enqueue_writes() {
        let keyed = [&b"5|1732300000000|#"[..], &[b'|'; 16], b"\x00bin|ary"].concat();
        let e = PendingEntry::parse(&keyed).unwrap();
        assert_eq!(
            e,
            PendingEntry {
                max_attempts: 5,
                created_ms: 1_732_300_000_000
            }
        );
        assert_eq!(&keyed[payload_at(&keyed).unwrap()..], b"\x00bin|ary");
        let plain = b"3|7|-\x01|p";
        assert_eq!(PendingEntry::parse(plain).map(|e| e.created_ms), Some(7));
        assert_eq!(&plain[payload_at(plain).unwrap()..], b"\x01|p");
        // Written before: the key's hash in hex, or nothing, between bars.
        assert_eq!(PendingEntry::parse(b"3|7||").map(|e| e.created_ms), Some(7));
        assert_eq!(payload_at(b"5|7|ab12|\x00bin|ary"), Some(9));
    }

    #[test]
    fn refuses_malformed_entries() {
        for raw in [
            &b""[..],
            b"5",
            b"5|x|k|p",
            b"5|7|k",
            b"5|7|",
            b"99999999999|7|k|p",
        ] {
            assert_eq!(PendingEntry::parse(raw), None, "{:?}", raw);
        }
    }
}
