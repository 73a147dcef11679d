//! The queue's Lua scripts, each in its own `.lua` file beside this one.
//!
//! `common.lua` (argument conventions and helpers), `idempotency.lua` (idempotency keys) and
//! `lifecycle.lua` (pending entries, shared state changes) are prepended to each script at
//! build time, in that order (and the rate limiter's `slots.lua` to `fetch.lua`). `redis::Script` runs them by SHA and loads them again when Redis answers NOSCRIPT,
//! which is what happens after a Redis restart.

use redis::Script;
use std::sync::LazyLock;

macro_rules! queue_script {
    ($name:ident, $file:literal) => {
        #[doc = concat!("`", $file, "`")]
        pub static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("scripts/common.lua"),
                "\n",
                include_str!("scripts/idempotency.lua"),
                "\n",
                include_str!("scripts/lifecycle.lua"),
                "\n",
                include_str!(concat!("scripts/", $file))
            ))
        });
    };
}

/// `fetch.lua`, which also hands out the rate limit's request slots (`ratelimit/slots.lua`).
pub static FETCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/common.lua"),
        "\n",
        include_str!("scripts/idempotency.lua"),
        "\n",
        include_str!("scripts/lifecycle.lua"),
        "\n",
        include_str!("../ratelimit/slots.lua"),
        "\n",
        include_str!("scripts/fetch.lua")
    ))
});

queue_script!(ENQUEUE, "enqueue.lua");
queue_script!(ACK, "ack.lua");
queue_script!(ACK_SUCCEEDED, "ack_succeeded.lua");
queue_script!(RENEW, "renew.lua");
queue_script!(SUPPLY_CODE, "supply_code.lua");
queue_script!(RESEND_CODE, "resend_code.lua");
queue_script!(EXPIRE_CODES, "expire_codes.lua");
queue_script!(ADD_DEPENDENT, "add_dependent.lua");
queue_script!(RESOLVE_DEPENDENCY, "resolve_dependency.lua");
queue_script!(DEAD_RETRY, "dead_retry.lua");
queue_script!(DEAD_PURGE, "dead_purge.lua");
queue_script!(QUARANTINE, "quarantine.lua");
queue_script!(RECHECK_WAITING, "recheck_waiting.lua");
queue_script!(READ_JOB, "read_job.lua");
queue_script!(QUEUE_STATS, "queue_stats.lua");
queue_script!(DEAD_LIST, "dead_list.lua");
queue_script!(SOURCE_STATE, "source_state.lua");
queue_script!(CANCEL_BATCH, "cancel_batch.lua");
queue_script!(PAUSE_KIND, "pause_kind.lua");
queue_script!(JOB_ROWS, "job_rows.lua");
queue_script!(CANCEL_JOB, "cancel_job.lua");
queue_script!(IDEM_LOOKUP, "idem_lookup.lua");
queue_script!(SWEEP_IDEM, "sweep_idem.lua");

/// Every script, for loading them all at once (before pipelined EVALSHA calls).
pub fn all() -> [&'static Script; 24] {
    [
        &ENQUEUE,
        &FETCH,
        &ACK,
        &ACK_SUCCEEDED,
        &RENEW,
        &SUPPLY_CODE,
        &RESEND_CODE,
        &EXPIRE_CODES,
        &ADD_DEPENDENT,
        &RESOLVE_DEPENDENCY,
        &DEAD_RETRY,
        &DEAD_PURGE,
        &QUARANTINE,
        &RECHECK_WAITING,
        &READ_JOB,
        &QUEUE_STATS,
        &DEAD_LIST,
        &SOURCE_STATE,
        &CANCEL_BATCH,
        &PAUSE_KIND,
        &JOB_ROWS,
        &CANCEL_JOB,
        &IDEM_LOOKUP,
        &SWEEP_IDEM,
    ]
}
