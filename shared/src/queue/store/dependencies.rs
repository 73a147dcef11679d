//! Children waiting on a parent (`depends_on`): registering a child with its parent
//! (`add_dependent.lua`, in the parent's queue) and resolving it when the parent ends
//! (`resolve_dependency.lua`, in the child's queue). The two queues may be different slots,
//! so the two steps are separate scripts; the sweeper's [`JobStore::recheck_waiting`]
//! catches a child whose parent ended between them.

use super::pipelines::ProviderPipelines;
use super::{JobStore, QueueError};
use crate::jobs::JobKind;
use crate::queue::error_record::ErrorRecord;
use crate::queue::ids::kind_of_id;
use crate::queue::keys::QueueKeys;
use crate::queue::replies::{self, ChildRef, ParentState};
use crate::queue::scripts;
use crate::ErrorClass;
use redis::Value;
use std::time::Duration;

/// How a parent ended, for its waiting children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParentOutcome {
    /// It succeeded: they run.
    Succeeded,
    /// It failed (why): they are dead with "dependency failed".
    Failed(String),
    /// It was cancelled with its batch: so are they.
    Cancelled,
}

impl JobStore {
    /// Resolves one waiting child.
    async fn resolve_child(
        &self,
        kind: JobKind,
        id: &str,
        parent: ParentOutcome,
    ) -> Result<(), QueueError> {
        let child = ChildRef {
            kind,
            id: id.to_string(),
        };
        self.resolve_children(&[child], &parent).await
    }

    /// Registers child `id` (of `kind`) with its parent; resolves it at once when the
    /// parent already ended. Also what the sweeper calls for children left waiting.
    pub async fn link_dependency(
        &self,
        kind: JobKind,
        id: &str,
        parent: &str,
    ) -> Result<(), QueueError> {
        self.link_dependencies(&[(kind, id, parent)]).await
    }

    /// [`JobStore::link_dependency`] for many `(kind, child id, parent id)` at once: one
    /// pipelined round trip; only children whose parent already ended need another.
    pub(super) async fn link_dependencies(
        &self,
        children: &[(JobKind, &str, &str)],
    ) -> Result<(), QueueError> {
        let mut pipes = ProviderPipelines::default();
        let mut linked = Vec::with_capacity(children.len());
        for &(kind, id, parent) in children {
            let Some(parent_kind) = kind_of_id(parent) else {
                let why = format!("parent {parent} is not a job id");
                self.resolve_child(kind, id, ParentOutcome::Failed(why))
                    .await?;
                continue;
            };
            let mut inv = self.script(&scripts::ADD_DEPENDENT, &QueueKeys::new(parent_kind));
            inv.arg(parent).arg(ChildRef::encode(kind, id));
            pipes.next(parent_kind.provider()).invoke_script(&inv);
            linked.push((kind, id, parent));
        }
        if linked.is_empty() {
            return Ok(());
        }
        let replies: Vec<Vec<Value>> = self.query_by_provider(pipes).await?;
        for ((kind, id, parent), reply) in linked.into_iter().zip(replies) {
            let outcome = match ParentState::decode(&reply)? {
                ParentState::Pending => continue,
                ParentState::Succeeded => ParentOutcome::Succeeded,
                ParentState::Failed(state) if state == "cancelled" => ParentOutcome::Cancelled,
                ParentState::Failed(state) => {
                    ParentOutcome::Failed(format!("parent {parent} is {state}"))
                }
                ParentState::Missing => {
                    ParentOutcome::Failed(format!("parent {parent} does not exist"))
                }
            };
            self.resolve_child(kind, id, outcome).await?;
        }
        Ok(())
    }

    /// Resolves waiting children of a parent that ended: queued (or scheduled) when it
    /// succeeded, dead with "dependency failed" when it failed, cancelled when it was
    /// cancelled (and then their own children too).
    pub(super) async fn resolve_children(
        &self,
        children: &[ChildRef],
        parent: &ParentOutcome,
    ) -> Result<(), QueueError> {
        let (flag, why) = match parent {
            ParentOutcome::Succeeded => ("1", String::new()),
            ParentOutcome::Failed(why) => ("0", why.clone()),
            ParentOutcome::Cancelled => ("c", String::new()),
        };
        let err = ErrorRecord::new(
            ErrorClass::DependencyFailed,
            "DependencyFailed",
            format!("dependency failed: {why}"),
        );
        let mut todo: Vec<ChildRef> = children.to_vec();
        while let Some(child) = todo.pop() {
            let mut inv = self.script(&scripts::RESOLVE_DEPENDENCY, &QueueKeys::new(child.kind));
            inv.arg(&child.id)
                .arg(flag)
                .arg(err.to_json())
                .arg(self.cfg.queue.retention_secs.max(1));
            // A cancelled child's own children are cancelled in turn.
            todo.extend(replies::cancelled_dependents(&self.run_list(inv).await?)?);
        }
        Ok(())
    }

    /// Re-checks children that have waited longer than `older_than` (a crash between a
    /// parent's ack and the resolution of its children leaves them waiting).
    pub async fn recheck_waiting(
        &self,
        kind: JobKind,
        older_than: Duration,
    ) -> Result<usize, QueueError> {
        let mut inv = self.script(&scripts::RECHECK_WAITING, &QueueKeys::new(kind));
        inv.arg(older_than.as_millis() as u64);
        let waiting = replies::still_waiting(&self.run_list(inv).await?)?;
        for (id, parent) in &waiting {
            if parent.is_empty() {
                self.resolve_child(kind, id, ParentOutcome::Succeeded)
                    .await?;
            } else {
                self.link_dependency(kind, id, parent).await?;
            }
        }
        Ok(waiting.len())
    }
}
