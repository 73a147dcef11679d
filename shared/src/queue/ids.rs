//! Job ids: `<prefix>_<ULID>` (`cust_01J...`). They sort by creation time within a kind,
//! and the prefix says which queue holds the job, so `status(id)` needs no index.

use crate::jobs::JobKind;

/// The prefix of `kind`'s job ids (`cust`, ...).
pub(crate) fn id_prefix(kind: JobKind) -> &'static str {
    match kind {
        JobKind::CreateCustomer => "cust",
        JobKind::BindDevices => "bind",
        JobKind::CreateAccount => "acct",
        JobKind::RegisterUser => "user",
    }
}

/// A new job id for `kind`: `<prefix>_<ULID>`.
pub fn new_job_id(kind: JobKind) -> String {
    format!("{}_{}", id_prefix(kind), ulid::Ulid::new())
}

/// The kind a job id belongs to, or `None` when the id is not one of ours.
pub fn kind_of_id(id: &str) -> Option<JobKind> {
    let (prefix, rest) = id.split_once('_')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    JobKind::ALL.into_iter().find(|k| id_prefix(*k) == prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_queue_and_sort_by_time() {
        for kind in JobKind::ALL {
            let a = new_job_id(kind);
            std::thread::sleep(std::time::Duration::from_millis(2));
            let b = new_job_id(kind);
            assert_eq!(kind_of_id(&a), Some(kind));
            assert!(a < b, "{a} < {b}");
        }
        assert_eq!(kind_of_id("nope"), None);
        assert_eq!(kind_of_id("cust_"), None);
        assert_eq!(kind_of_id("cust_a:b"), None);
        assert_eq!(kind_of_id("zzz_01J"), None);
    }
}
