//! Children waiting on a parent (`depends_on`): registering a child with its parent
//! (`add_dependent.lua`, in the parent's queue) and resolving it when the parent ends
//! (`resolve_dependency.lua`, in the child's queue). The two queues may be different slots,
//! so the two steps are separate scripts; the sweeper's [`JobStore::recheck_waiting`]
//! catches a child whose parent ended between them.

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

impl JobStore {
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
        let mut pipe = redis::pipe();
        let mut linked = Vec::with_capacity(children.len());
        for &(kind, id, parent) in children {
            let Some(parent_kind) = kind_of_id(parent) else {
                let why = format!("parent {parent} is not a job id");
                self.resolve_dependency(kind, id, false, &why).await?;
                continue;
            };
            let mut inv = self.script(&scripts::ADD_DEPENDENT, &QueueKeys::new(parent_kind));
            inv.arg(parent).arg(ChildRef::encode(kind, id));
            pipe.invoke_script(&inv);
            linked.push((kind, id, parent));
        }
        if linked.is_empty() {
            return Ok(());
        }
        let replies: Vec<Vec<Value>> = self.query_pipeline(&pipe).await?;
        for ((kind, id, parent), reply) in linked.into_iter().zip(replies) {
            match ParentState::decode(&reply)? {
                ParentState::Pending => {}
                ParentState::Succeeded => self.resolve_dependency(kind, id, true, "").await?,
                ParentState::Failed(state) => {
                    let why = format!("parent {parent} is {state}");
                    self.resolve_dependency(kind, id, false, &why).await?
                }
                ParentState::Missing => {
                    let why = format!("parent {parent} does not exist");
                    self.resolve_dependency(kind, id, false, &why).await?
                }
            }
        }
        Ok(())
    }

    /// A waiting child becomes queued (`ok`) or dead with "dependency failed: `why`".
    async fn resolve_dependency(
        &self,
        kind: JobKind,
        id: &str,
        ok: bool,
        why: &str,
    ) -> Result<(), QueueError> {
        let err = ErrorRecord::new(
            ErrorClass::DependencyFailed,
            "DependencyFailed",
            format!("dependency failed: {why}"),
        );
        let mut inv = self.script(&scripts::RESOLVE_DEPENDENCY, &QueueKeys::new(kind));
        inv.arg(id)
            .arg(if ok { "1" } else { "0" })
            .arg(err.to_json());
        let _: Vec<Value> = self.run(inv).await?;
        Ok(())
    }

    /// Resolves the children a finished parent's script returned: queued when `ok`, else
    /// dead with "dependency failed: `why`".
    pub(super) async fn resolve_children(
        &self,
        children: &[ChildRef],
        ok: bool,
        why: &str,
    ) -> Result<(), QueueError> {
        for child in children {
            self.resolve_dependency(child.kind, &child.id, ok, why)
                .await?;
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
                self.resolve_dependency(kind, id, true, "").await?;
            } else {
                self.link_dependency(kind, id, parent).await?;
            }
        }
        Ok(waiting.len())
    }
}
