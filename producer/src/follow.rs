//! Following many jobs to the end through the events stream: what the backfill's `--wait`,
//! the demo and the tests use.
//!
//! [`JobsFollower`] subscribes first and reads each job's state after, so no change in
//! between is missed. The stream is capped (`queue.events_maxlen`), so after a quiet spell it
//! reads the open jobs' states directly once more: a change trimmed from the stream before
//! it was read is never waited for in vain. A Redis restart or failover is ridden out the
//! same way: subscribe again, then read the open jobs again.

use crate::{Producer, ProducerError};
use onboard_shared::events::EventFollower;
use onboard_shared::queue::{JobState, JobStatus};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// After this long without an event of ours, open jobs are read again directly.
const QUIET: Duration = Duration::from_secs(5);
/// How long [`Producer::follow`] keeps trying to reach Redis.
pub const SETUP_PATIENCE: Duration = Duration::from_secs(30);
/// The pause before subscribing again after losing Redis.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// Many jobs, followed. See the module documentation.
pub struct JobsFollower {
    producer: Producer,
    /// `None` after the connection was lost, until subscribed again.
    events: Option<EventFollower>,
    states: HashMap<String, JobState>,
    quiet_since: Instant,
}

impl Producer {
    /// Starts following `ids` (their current states are read at once). Rides out a Redis
    /// restart for up to [`SETUP_PATIENCE`].
    pub async fn follow(&self, ids: &[String]) -> Result<JobsFollower, ProducerError> {
        let started = Instant::now();
        loop {
            match self.follow_once(ids).await {
                Err(e) if e.is_infrastructure() && started.elapsed() < SETUP_PATIENCE => {
                    tracing::debug!(error = %e, "lost Redis while starting to follow jobs; retrying");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    async fn follow_once(&self, ids: &[String]) -> Result<JobsFollower, ProducerError> {
        let events = EventFollower::from_now(self.store()).await?;
        let mut states = HashMap::with_capacity(ids.len());
        for id in ids {
            states.insert(id.clone(), self.status(id, false).await?.state);
        }
        Ok(JobsFollower {
            producer: self.clone(),
            events: Some(events),
            states,
            quiet_since: Instant::now(),
        })
    }
}

impl JobsFollower {
    /// The state each followed job was last seen in.
    pub fn states(&self) -> &HashMap<String, JobState> {
        &self.states
    }

    /// How many followed jobs are in each state.
    pub fn counts(&self) -> BTreeMap<JobState, usize> {
        self.states.values().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(*s).or_default() += 1;
            m
        })
    }

    /// How many followed jobs are not settled yet (final, or awaiting a code).
    pub fn unsettled(&self) -> usize {
        self.states.values().filter(|s| !s.is_settled()).count()
    }

    /// Waits up to `block` for state changes of followed jobs; returns them (job id, new
    /// state), possibly none. A lost connection is an error here; the next call subscribes
    /// again (see [`JobsFollower::settle`], which rides it out).
    pub async fn next_changes(
        &mut self,
        block: Duration,
    ) -> Result<Vec<(String, JobState)>, ProducerError> {
        let events = match self.events.as_mut() {
            Some(events) => events,
            None => {
                let events = EventFollower::from_now(self.producer.store()).await?;
                // Subscribed again: whatever changed while away is read directly.
                self.quiet_since = Instant::now() - QUIET * 2;
                self.events.insert(events)
            }
        };
        let batch = match events.next_batch(block).await {
            Ok(batch) => batch,
            Err(e) => {
                self.events = None;
                return Err(e.into());
            }
        };
        let mut changes = Vec::new();
        for event in batch {
            let (Some(slot), Some(state)) =
                (self.states.get_mut(&event.job_id), event.state.job_state())
            else {
                continue;
            };
            self.quiet_since = Instant::now();
            if *slot != state {
                *slot = state;
                changes.push((event.job_id, state));
            }
        }
        if changes.is_empty() && self.quiet_since.elapsed() > QUIET {
            self.quiet_since = Instant::now();
            let open: Vec<String> = self
                .states
                .iter()
                .filter(|(_, s)| !s.is_final())
                .map(|(id, _)| id.clone())
                .collect();
            for id in open {
                let state = self.producer.status(&id, false).await?.state;
                if self.states.insert(id.clone(), state) != Some(state) {
                    changes.push((id, state));
                }
            }
        }
        Ok(changes)
    }

    /// Follows until every job is settled (final, or awaiting a code) or `timeout` passes;
    /// `on_change` sees the follower after each batch of changes. Returns how many are
    /// still unsettled (0 when all settled).
    pub async fn settle(
        &mut self,
        timeout: Duration,
        mut on_change: impl FnMut(&JobsFollower),
    ) -> Result<usize, ProducerError> {
        let deadline = Instant::now() + timeout;
        on_change(self);
        while self.unsettled() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next_changes(left.min(Duration::from_secs(1))).await {
                Ok(changes) if !changes.is_empty() => on_change(self),
                Ok(_) => {}
                Err(e) if e.is_infrastructure() => {
                    tracing::debug!(error = %e, "lost Redis while following jobs; reconnecting");
                    tokio::time::sleep(RECONNECT_PAUSE.min(left)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(self.unsettled())
    }

    /// The followed jobs' full statuses, in the order of `ids`.
    pub async fn statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, ProducerError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.producer.status(id, false).await?);
        }
        Ok(out)
    }
}
