//! Every metric the worker exports, described once (the `# HELP` lines operators read) and
//! started at zero for each job kind and outcome, so dashboards and alert rules see a series
//! from the first scrape instead of "no data" until the first event.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use onboard_shared::jobs::JobKind;
use onboard_shared::providers::{Provider, ALL_ACTIONS};
use onboard_shared::queue::Lane;

/// Outcomes counted by `onboard_jobs_finished_total`.
const OUTCOMES: [&str; 3] = ["succeeded", "dead", "expired"];
/// Results counted by `onboard_job_attempts_total`.
const RESULTS: [&str; 6] = [
    "ok",
    "transient",
    "throttled",
    "permanent",
    "code_rejected",
    "outcome_unknown",
];
/// Describes every metric and registers its zero-valued series.
pub fn register() {
    describe_counter!(
        "onboard_jobs_enqueued_total",
        "Jobs enqueued, per kind (from the queue's own counter)"
    );
    describe_counter!(
        "onboard_jobs_finished_total",
        "Jobs that reached a final state: succeeded, dead or expired"
    );
    describe_counter!("onboard_job_attempts_total", "Job attempts by result class");
    describe_histogram!(
        "onboard_job_duration_seconds",
        Unit::Seconds,
        "Duration of one job attempt"
    );
    describe_gauge!(
        "onboard_queue_jobs",
        "Jobs per kind and state, sampled from Redis every second"
    );
    describe_gauge!(
        "onboard_queue_oldest_ready_age_seconds",
        Unit::Seconds,
        "Age of the oldest due job per kind"
    );
    describe_counter!(
        "onboard_provider_requests_total",
        "Provider requests by provider, action and answer code (OK or the provider's code)"
    );
    describe_histogram!(
        "onboard_provider_request_duration_seconds",
        Unit::Seconds,
        "Provider request duration"
    );
    describe_histogram!(
        "onboard_rate_limit_wait_seconds",
        Unit::Seconds,
        "Time spent waiting for a global rate-limit permit"
    );
    describe_counter!(
        "onboard_rate_limit_slots_missed_total",
        "Request slots given up because the worker woke too late to send in the slot's second"
    );
    describe_counter!(
        "onboard_provider_cooldowns_total",
        "Times a provider's throttling paused it for every worker"
    );
    describe_gauge!(
        "onboard_awaiting_code_jobs",
        "create-account jobs suspended until a verify code is supplied"
    );
    describe_counter!(
        "onboard_jobs_cancelled_total",
        "Jobs cancelled with their batch before they started, per kind (the queue's counter)"
    );
    describe_counter!(
        "onboard_job_starts_total",
        "Job attempts started, per kind and lane"
    );
    describe_histogram!(
        "onboard_job_wait_seconds",
        Unit::Seconds,
        "From a job's enqueue to its provider request slot, per kind and lane"
    );
    describe_gauge!(
        "onboard_queued_jobs",
        "Due jobs waiting for their turn, per kind and lane"
    );
    describe_gauge!(
        "onboard_queue_paused",
        "1 while claiming the kind is paused (queue pause)"
    );
    describe_counter!(
        "onboard_sweeper_errors_total",
        "Housekeeping rounds that failed (after 3 in a row /readyz answers 503)"
    );
    describe_counter!(
        "onboard_idempotency_keys_swept_total",
        "Idempotency entries deleted after their jobs' records expired, by kind"
    );
    describe_counter!(
        "onboard_worker_leases_renewed_total",
        "Job leases renewed while a job ran"
    );
    describe_counter!(
        "onboard_worker_leases_expired_total",
        "Jobs returned to the queue because their lease expired"
    );

    for kind in JobKind::ALL {
        let k = kind.as_str();
        for outcome in OUTCOMES {
            metrics::counter!("onboard_jobs_finished_total", "kind" => k, "outcome" => outcome)
                .increment(0);
        }
        for lane in Lane::ALL {
            let l = lane.as_str();
            metrics::counter!("onboard_job_starts_total", "kind" => k, "lane" => l).increment(0);
            metrics::gauge!("onboard_queued_jobs", "kind" => k, "lane" => l).set(0.0);
        }
        metrics::gauge!("onboard_queue_paused", "kind" => k).set(0.0);
        for result in RESULTS {
            metrics::counter!("onboard_job_attempts_total", "kind" => k, "result" => result)
                .increment(0);
        }
    }
    for action in ALL_ACTIONS {
        metrics::counter!("onboard_provider_requests_total", "provider" => action.provider.as_str(), "action" => action.name, "code" => "OK")
            .increment(0);
        metrics::counter!("onboard_rate_limit_slots_missed_total", "provider" => action.provider.as_str(), "action" => action.name)
            .increment(0);
    }
    for provider in Provider::ALL {
        metrics::counter!("onboard_provider_cooldowns_total", "provider" => provider.as_str())
            .increment(0);
    }
    metrics::counter!("onboard_worker_leases_renewed_total").increment(0);
    metrics::counter!("onboard_sweeper_errors_total").increment(0);
    metrics::gauge!("onboard_awaiting_code_jobs").set(0.0);
}
