//! Which encryption keys the data in Redis is sealed with, kept as their check values in
//! one set, so that a process with the wrong key refuses to start (naming the problem)
//! instead of dead-lettering every job it reads as undecodable; and key rotation:
//! [`JobStore::rekey`] re-seals everything at rest with the first configured key, after
//! which the older keys can be dropped from the configuration.

use super::{JobStore, QueueError};
use crate::jobs::JobKind;
use crate::queue::compact;
use crate::queue::idempotency::Entry;
use crate::queue::keys::QueueKeys;
use crate::queue::pending::payload_at;
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;

/// The set of check values of the keys Redis's data is sealed with.
const KEY_CHECKS: &str = "onboard:key-checks";

/// Replaces one hash field only if it still holds what was read (see `reseal.lua`).
static RESEAL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("reseal.lua")));

/// Fields of a job record that hold sealed values.
const SEALED_FIELDS: [&str; 4] = ["payload", "code", "early_code", "result"];

/// What [`JobStore::rekey`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RekeyReport {
    /// Values re-sealed with the first key.
    pub resealed: u64,
    /// Values already sealed with it.
    pub current: u64,
    /// Values that changed while being re-sealed (their job moved on; run rekey again).
    pub changed_meanwhile: u64,
    /// Values no configured key opens (corrupted): left as they are.
    pub unreadable: u64,
    /// True when only the first key's check value remains: the older keys can go.
    pub old_keys_released: bool,
}

impl JobStore {
    /// Checks this process's keys against the check values in Redis: every key Redis's
    /// data is sealed with must be one of ours. Registers our sealing key.
    pub(super) async fn check_encryption_keys(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let stored: Vec<String> = conn.smembers(KEY_CHECKS).await?;
        let ours: Vec<&str> = self.cipher.checks().collect();
        let unknown: Vec<String> = stored
            .into_iter()
            .filter(|c| !ours.contains(&c.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(QueueError::KeyMismatch { unknown });
        }
        let _: () = conn.sadd(KEY_CHECKS, self.cipher.sealing_check()).await?;
        Ok(())
    }

    /// Re-seals every sealed value at rest (job records and bulk-enqueued entries of every
    /// queue) with the first configured key, and re-digests the payload digests kept beside
    /// idempotency keys with it. When nothing is left sealed with another key,
    /// the other keys' check values are dropped from Redis, and the keys from the
    /// configuration may go.
    pub async fn rekey(&self) -> Result<RekeyReport, QueueError> {
        let mut report = RekeyReport::default();
        for kind in JobKind::ALL {
            let keys = QueueKeys::new(kind);
            self.rekey_records(&keys, &mut report).await?;
            self.rekey_pending(&keys, &mut report).await?;
            self.redigest_keys(&keys, &mut report).await?;
        }
        if report.unreadable == 0 && report.changed_meanwhile == 0 {
            let mut conn = self.conn.clone();
            let stored: Vec<String> = conn.smembers(KEY_CHECKS).await?;
            for check in stored.iter().filter(|c| *c != self.cipher.sealing_check()) {
                let _: () = conn.srem(KEY_CHECKS, check).await?;
            }
            report.old_keys_released = true;
        }
        Ok(report)
    }

    /// Every key matching `pattern` (which carries a provider's hash tag), SCANned on the
    /// node that holds that provider's slot.
    async fn scan_keys(&self, pattern: &str) -> Result<Vec<String>, QueueError> {
        let mut conn = self.conn.clone();
        let mut all = Vec::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = conn.scan_step(pattern, cursor, pattern).await?;
            all.extend(keys);
            if next == 0 {
                return Ok(all);
            }
            cursor = next;
        }
    }

    async fn rekey_records(
        &self,
        keys: &QueueKeys,
        report: &mut RekeyReport,
    ) -> Result<(), QueueError> {
        let records = self.scan_keys(&keys.job("*")).await?;
        let mut conn = self.conn.clone();
        for record in records {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
                .arg(&record)
                .arg(&SEALED_FIELDS)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            for (field, value) in SEALED_FIELDS.iter().zip(values) {
                if let Some(sealed) = value.filter(|v| !v.is_empty()) {
                    let resealed = match self.cipher.open_checked(&sealed) {
                        Ok((_, true)) => None,
                        Ok((plain, false)) => Some(self.cipher.seal(&plain)),
                        Err(_) => {
                            report.unreadable += 1;
                            continue;
                        }
                    };
                    self.reseal(&record, field.as_bytes(), &sealed, resealed, report)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn rekey_pending(
        &self,
        keys: &QueueKeys,
        report: &mut RekeyReport,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let entries: Vec<(String, Vec<u8>)> = {
            let mut iter: redis::AsyncIter<(String, Vec<u8>)> = conn.hscan(keys.pending()).await?;
            let mut all = Vec::new();
            while let Some(entry) = iter.next_item().await {
                all.push(entry?);
            }
            all
        };
        for (id, entry) in entries {
            let Some(at) = payload_at(&entry) else {
                report.unreadable += 1;
                continue;
            };
            let (head, sealed) = entry.split_at(at);
            let resealed = match self.cipher.open_checked(sealed) {
                Ok((_, true)) => None,
                Ok((plain, false)) => Some([head, &self.cipher.seal(&plain)].concat()),
                Err(_) => {
                    report.unreadable += 1;
                    continue;
                }
            };
            self.reseal(&keys.pending(), id.as_bytes(), &entry, resealed, report)
                .await?;
        }
        Ok(())
    }

    /// Re-digests each idempotency entry's payload digest with the first key (see
    /// `queue::digest`): once the older keys are gone, only its digests match.
    async fn redigest_keys(
        &self,
        keys: &QueueKeys,
        report: &mut RekeyReport,
    ) -> Result<(), QueueError> {
        // Buckets only (`idem:<4 hex digits>`): keys of the form written before, one string
        // each, are left as they are, and expire with their jobs.
        let buckets = self.scan_keys(&keys.idempotency("????")).await?;
        let mut conn = self.conn.clone();
        for bucket in buckets {
            // A bucket of the wrong type is left to enqueue (it moves it aside).
            let Ok(entries) = conn.hgetall::<_, Vec<(Vec<u8>, Vec<u8>)>>(&bucket).await else {
                continue;
            };
            for (field, value) in entries {
                let Some(entry) = Entry::parse(keys.kind(), &value) else {
                    continue;
                };
                let Some(stored) = entry.digest.as_deref() else {
                    continue; // stored without a digest: matches any payload
                };
                let Some(plain) = self.payload_of(keys, &entry.first_id).await? else {
                    continue; // its job is gone; lookups count the entry absent
                };
                let fresh = self.digest.of(&plain);
                if fresh == stored {
                    report.current += 1;
                    continue;
                }
                if !self.digest.matches(stored, &plain) {
                    report.unreadable += 1;
                    continue;
                }
                let redigested = Some(entry.with_digest(&fresh));
                self.reseal(&bucket, &field, &value, redigested, report)
                    .await?;
            }
        }
        Ok(())
    }

    /// The clear payload (JSON) of job `id`, from its record or its bulk entry.
    async fn payload_of(&self, keys: &QueueKeys, id: &str) -> Result<Option<Vec<u8>>, QueueError> {
        let mut conn = self.conn.clone();
        let sealed: Option<Vec<u8>> = conn.hget(keys.job(id), "payload").await.unwrap_or(None);
        let sealed = match sealed {
            Some(s) if !s.is_empty() => s,
            _ => {
                let entry: Option<Vec<u8>> = conn.hget(keys.pending(), id).await.unwrap_or(None);
                match entry.and_then(|e| payload_at(&e).map(|at| e[at..].to_vec())) {
                    Some(s) => s,
                    None => return Ok(None),
                }
            }
        };
        Ok(self
            .cipher
            .open(&sealed)
            .ok()
            .map(|plain| compact::unpack(&plain).into_owned()))
    }

    /// Writes `resealed` over `old` in `hash`.`field` if it still holds `old` (a sealed
    /// value, or an idempotency entry with its digest redone).
    async fn reseal(
        &self,
        hash: &str,
        field: &[u8],
        old: &[u8],
        resealed: Option<Vec<u8>>,
        report: &mut RekeyReport,
    ) -> Result<(), QueueError> {
        let Some(new) = resealed else {
            report.current += 1;
            return Ok(());
        };
        let mut conn = self.conn.clone();
        let written: i64 = RESEAL
            .key(hash)
            .arg(field)
            .arg(old)
            .arg(new)
            .invoke_async(&mut conn)
            .await?;
        if written == 1 {
            report.resealed += 1;
        } else {
            report.changed_meanwhile += 1;
        }
        Ok(())
    }
}
