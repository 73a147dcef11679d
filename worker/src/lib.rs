//! onboard-worker: runs provisioning jobs from the Redis queues against the providers.
//!
//! * [`runtime`]: apalis on our Redis backend: fetch into free slots, leases and their
//!   renewal, acknowledgements (successes in batches), the outcome policy;
//! * [`credentials`]: which credentials each kind needs (checked at start-up);
//! * [`handlers`]: what one attempt of each job kind does against its provider;
//! * [`launcher`]: the apalis `Monitor`, one worker per job kind;
//! * [`sweeper`]: housekeeping every second (code deadlines, waiting children, gauges);
//! * [`idem_sweeper`]: deletes idempotency entries whose jobs' records have expired;
//! * [`http`]: `/metrics`, `/healthz`, `/readyz`; [`catalogue`]: every metric, described;
//! * [`telemetry`], logging.
//!
//! The binary (`main.rs`) wires them together and owns start-up and shutdown. The library
//! target exists so the benchmark harness can run the same runtime in-process.

pub mod catalogue;
pub mod credentials;
pub mod handlers;
pub mod http;
pub mod idem_sweeper;
pub mod launcher;
pub mod runtime;
pub mod sweeper;
pub mod telemetry;
