//! Pipelines that stay in one hash slot: a Redis Cluster refuses a pipeline whose commands
//! hash to different slots, so commands bound for several providers' queues go out as one
//! pipeline per provider (all of a provider's keys share its hash tag), sent concurrently,
//! with the answers handed back in the order the commands were added. On one server this
//! costs nothing more than the round trips of the providers involved, in parallel.

use super::{JobStore, QueueError};
use crate::providers::Provider;
use crate::queue::scripts;
use redis::{FromRedisValue, Pipeline, Value};

/// Commands grouped by the provider whose slot they touch.
#[derive(Default)]
pub(super) struct ProviderPipelines {
    /// Per provider: its pipeline and the places its commands were added at.
    pipes: Vec<(Provider, Pipeline, Vec<usize>)>,
    added: usize,
}

impl ProviderPipelines {
    /// The pipeline of `provider`'s slot, for the caller to add exactly one command (or
    /// script call) to: its answer comes back at the next place in order.
    pub(super) fn next(&mut self, provider: Provider) -> &mut Pipeline {
        let at = match self.pipes.iter().position(|(p, _, _)| *p == provider) {
            Some(at) => at,
            None => {
                self.pipes.push((provider, redis::pipe(), Vec::new()));
                self.pipes.len() - 1
            }
        };
        let (_, pipe, places) = &mut self.pipes[at];
        places.push(self.added);
        self.added += 1;
        pipe
    }
}

impl JobStore {
    /// Runs `pipes`, one pipeline per provider at once; one answer per command added, in
    /// the order they were added.
    pub(super) async fn query_by_provider<T: FromRedisValue>(
        &self,
        pipes: ProviderPipelines,
    ) -> Result<Vec<T>, QueueError> {
        let calls = pipes
            .pipes
            .iter()
            .map(|(_, pipe, _)| self.query_pipeline::<Vec<Value>>(pipe));
        let answers = futures::future::try_join_all(calls).await?;
        let mut out: Vec<Option<Value>> = vec![None; pipes.added];
        for ((_, _, places), values) in pipes.pipes.iter().zip(answers) {
            if values.len() != places.len() {
                return Err(QueueError::Protocol(format!(
                    "a pipeline of {} commands answered {}",
                    places.len(),
                    values.len()
                )));
            }
            for (&place, value) in places.iter().zip(values) {
                out[place] = Some(value);
            }
        }
        out.into_iter()
            .map(|v| {
                let v = v.ok_or_else(|| QueueError::Protocol("missing pipeline answer".into()))?;
                redis::from_redis_value(v).map_err(|e| QueueError::Protocol(e.to_string()))
            })
            .collect()
    }

    /// Runs one pipeline (its commands all in one slot), loading the scripts first when
    /// Redis lost them (NOSCRIPT after a restart or a failover): pipelines do not reload by
    /// themselves.
    pub(super) async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        match pipe.query_async(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                for s in scripts::all() {
                    s.load_async(&mut conn).await?;
                }
                Ok(pipe.query_async(&mut conn).await?)
            }
            Err(e) => Err(e.into()),
        }
    }
}
