//! The operator console's reads and its actions on groups: a page of one queue's jobs in a
//! state, dead letters grouped by error code (and retrying or purging a group), a job's
//! history, the job holding an idempotency key, jobs awaiting a code, how many request slots
//! a limit handed out, and cancelling one job. Every read is bounded by the page asked for:
//! ranges with limits, one record per listed job, never a whole set of jobs (the sets of
//! sources and of error codes are read whole: they grow with batches and codes, not jobs).

use super::{refused, JobStore, QueueError};
use crate::jobs::{Job, JobKind};
use crate::providers::Limit;
use crate::queue::browse::{DeadGroup, GroupOutcome, HistoryEntry, JobFilter, JobPage, Listed};
use crate::queue::keys::{ProviderKeys, QueueKeys};
use crate::queue::replies;
use crate::queue::{scripts, Lane};
use redis::AsyncCommands;

/// Ids a filtered page looks at, at most, before it answers with what it found (and a
/// cursor to go on from): a filter that matches little never reads a whole set.
const SCAN_PER_PAGE: usize = 2_000;

impl JobStore {
    /// One page of `filter`'s jobs from `after` (a cursor from the previous page), at most
    /// `limit`. Queued jobs are listed list by list (one per lane and source, in name order),
    /// the others by the time their sorted set keeps (oldest first).
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<JobPage, QueueError> {
        let keys = QueueKeys::new(filter.kind);
        let limit = limit.clamp(1, 500);
        if filter.state == Listed::Queued {
            return self.list_queued(&keys, filter, after, limit).await;
        }
        let set = match filter.state {
            Listed::Waiting => keys.waiting(),
            Listed::Running => keys.leased(),
            Listed::Scheduled => keys.scheduled(),
            Listed::AwaitingCode => keys.awaiting(),
            Listed::Dead | Listed::Queued => keys.dead(),
        };
        let mut offset: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        let mut page = JobPage::default();
        let mut scanned = 0;
        let mut conn = self.conn.clone();
        while page.rows.len() < limit && scanned < SCAN_PER_PAGE {
            let want = if filter.source.is_some() || filter.lane.is_some() {
                (limit * 4).min(SCAN_PER_PAGE - scanned)
            } else {
                limit - page.rows.len()
            };
            let ids: Vec<String> = conn
                .zrange(&set, offset as isize, (offset + want) as isize - 1)
                .await?;
            let got = ids.len();
            let mut rows = self.job_rows(&keys, &ids).await?.into_iter();
            for row in rows.by_ref() {
                offset += 1;
                scanned += 1;
                if matches_filter(filter, row.lane, row.source.as_deref()) {
                    page.rows.push(row);
                    if page.rows.len() == limit {
                        break;
                    }
                }
            }
            if got < want {
                return Ok(page);
            }
        }
        let more: Vec<String> = conn.zrange(&set, offset as isize, offset as isize).await?;
        page.next = (!more.is_empty()).then(|| offset.to_string());
        Ok(page)
    }

    /// Queued jobs, list by list: the cursor is `<list number>:<offset>`.
    async fn list_queued(
        &self,
        keys: &QueueKeys,
        filter: &JobFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<JobPage, QueueError> {
        let mut conn = self.conn.clone();
        let mut lists: Vec<String> = conn.smembers(keys.sources()).await?;
        lists.retain(|lane_source| {
            let (lane, source) = lane_source.split_once(':').unwrap_or((lane_source, ""));
            matches_filter(filter, lane.parse().ok(), Some(source))
        });
        lists.sort();
        let (mut list_no, mut offset) = after
            .and_then(|a| a.split_once(':'))
            .and_then(|(l, o)| Some((l.parse::<usize>().ok()?, o.parse::<usize>().ok()?)))
            .unwrap_or((0, 0));
        let mut page = JobPage::default();
        while let Some(lane_source) = lists.get(list_no) {
            let (lane, source) = lane_source.split_once(':').unwrap_or((lane_source, ""));
            let lane: Option<Lane> = lane.parse().ok();
            let want = limit - page.rows.len();
            let list = format!("{}ready:{lane_source}", keys.prefix());
            let ids: Vec<String> = conn
                .lrange(&list, offset as isize, (offset + want) as isize - 1)
                .await?;
            offset += ids.len();
            for mut row in self.job_rows(keys, &ids).await? {
                row.lane = row.lane.or(lane);
                row.source = row.source.or_else(|| Some(source.to_string()));
                page.rows.push(row);
            }
            if page.rows.len() == limit {
                let more: Vec<String> =
                    conn.lrange(&list, offset as isize, offset as isize).await?;
                if more.is_empty() {
                    list_no += 1;
                    offset = 0;
                }
                if list_no < lists.len() {
                    page.next = Some(format!("{list_no}:{offset}"));
                }
                return Ok(page);
            }
            list_no += 1;
            offset = 0;
        }
        Ok(page)
    }

    /// The rows of `ids` (one queue's), in their order.
    async fn job_rows(
        &self,
        keys: &QueueKeys,
        ids: &[String],
    ) -> Result<Vec<crate::queue::browse::JobRow>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.script(&scripts::JOB_ROWS, keys);
        for id in ids {
            inv.arg(id);
        }
        replies::job_rows(&self.run_list(inv).await?)
    }

    /// The dead letters of `kind` grouped by error code, largest group first, and how many
    /// dead letters no group holds (dead before the groups were kept).
    pub async fn dead_groups(&self, kind: JobKind) -> Result<(Vec<DeadGroup>, u64), QueueError> {
        let keys = QueueKeys::new(kind);
        let mut conn = self.conn.clone();
        let counts: Vec<(String, i64)> = conn.hgetall(keys.dead_codes()).await?;
        let total: u64 = conn.zcard(keys.dead()).await?;
        let mut groups: Vec<DeadGroup> = counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(code, n)| DeadGroup {
                kind,
                code,
                count: n.unsigned_abs(),
            })
            .collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
        let grouped: u64 = groups.iter().map(|g| g.count).sum();
        Ok((groups, total.saturating_sub(grouped)))
    }

    /// Retries (or, with `purge`, deletes) at most `max` dead letters of `kind` with error
    /// `code`, oldest first.
    pub async fn act_on_dead_group(
        &self,
        kind: JobKind,
        code: &str,
        purge: bool,
        max: usize,
    ) -> Result<GroupOutcome, QueueError> {
        let keys = QueueKeys::new(kind);
        let group = keys.dead_code(code);
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.zrange(&group, 0, max.max(1) as isize - 1).await?;
        let mut outcome = GroupOutcome::default();
        for id in &ids {
            let done = if purge {
                self.purge_dead(id).await.map(|_| ())
            } else {
                self.retry_dead(id).await.map(|_| ())
            };
            match done {
                Ok(()) => outcome.done += 1,
                Err(QueueError::WrongState { .. } | QueueError::NotFound(_)) => {
                    outcome.refused += 1;
                    // Not dead any more (or not retryable): it must not hold the group up.
                    if !purge {
                        let _: () = conn.zrem(&group, id).await?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        outcome.remaining = conn.zcard(&group).await?;
        Ok(outcome)
    }

    /// Job `id`'s history, oldest first (empty for a job still pending, whose creation time
    /// is its one change so far).
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, QueueError> {
        let keys = self.keys_for(id)?;
        let mut conn = self.conn.clone();
        let text: Option<String> = match conn.hget(keys.job(id), "history").await {
            Ok(text) => text,
            // A record of the wrong type has no history to show; `status` says what is wrong.
            Err(e) if e.code() == Some("WRONGTYPE") => None,
            Err(e) => return Err(e.into()),
        };
        Ok(text.map(|t| replies::history(&t)).unwrap_or_default())
    }

    /// Jobs of `kind` awaiting a code, soonest deadline first: ids and deadlines (Unix ms).
    pub async fn awaiting_codes(
        &self,
        kind: JobKind,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, QueueError> {
        let mut conn = self.conn.clone();
        let stop = (offset + limit.clamp(1, 500)) as isize - 1;
        let rows: Vec<(String, f64)> = conn
            .zrange_withscores(QueueKeys::new(kind).awaiting(), offset as isize, stop)
            .await?;
        Ok(rows.into_iter().map(|(id, at)| (id, at as u64)).collect())
    }

    /// Request slots `limit` has handed out since its counter began (claims and the gate).
    pub async fn slots_used(&self, kind: JobKind, limit: Limit) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let key = format!(
            "{}:used",
            ProviderKeys::new(kind.provider()).limit_slot(limit)
        );
        match conn.get::<_, Option<u64>>(key).await {
            Ok(n) => Ok(n.unwrap_or(0)),
            Err(e) if e.code() == Some("WRONGTYPE") => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Job `id`'s fields, opened from its record or its pending entry (for the console,
    /// which shows them masked: `crate::masked`).
    pub async fn job_payload(&self, id: &str) -> Result<Job, QueueError> {
        let keys = self.keys_for(id)?;
        let mut inv = self.script(&scripts::READ_JOB, &keys);
        inv.arg(id);
        let malformed = |why: String| QueueError::Malformed {
            id: id.to_string(),
            why,
        };
        let sealed = match replies::StoredJob::decode(&self.run_list(inv).await?)? {
            replies::StoredJob::Record(mut record) => record.remove("payload").unwrap_or_default(),
            replies::StoredJob::Pending(raw) => raw
                .splitn(4, |b| *b == b'|')
                .nth(3)
                .unwrap_or_default()
                .to_vec(),
            replies::StoredJob::Missing => return Err(QueueError::NotFound(id.to_string())),
            replies::StoredJob::Malformed(why) => return Err(malformed(why)),
        };
        if sealed.is_empty() {
            return Err(malformed("it has no payload".into()));
        }
        let plain = self
            .cipher
            .open(&sealed)
            .map_err(|e| malformed(format!("payload: {e}")))?;
        serde_json::from_slice(&plain)
            .map_err(|e| malformed(format!("payload does not decode: {e}")))
    }

    /// Cancels one job that has not started (queued, scheduled, waiting, awaiting a code),
    /// and the jobs waiting on it.
    pub async fn cancel_job(&self, id: &str) -> Result<(), QueueError> {
        let keys = self.keys_for(id)?;
        let mut inv = self.script(&scripts::CANCEL_JOB, &keys);
        inv.arg(id).arg(self.cfg.queue.retention_secs.max(1));
        let verdict = replies::cancelled_one(&self.run_list(inv).await?)?;
        let dependents = refused(
            id,
            verdict,
            "only a job that has not started can be cancelled",
        )?;
        self.resolve_children(&dependents, &super::dependencies::ParentOutcome::Cancelled)
            .await
    }
}

/// Whether a job of `lane` and `source` passes `filter`'s lane and source.
fn matches_filter(filter: &JobFilter, lane: Option<Lane>, source: Option<&str>) -> bool {
    filter.lane.is_none_or(|l| lane == Some(l))
        && filter.source.as_deref().is_none_or(|s| source == Some(s))
}
