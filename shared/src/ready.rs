//! The lines the binaries print on standard output once they serve, each followed by the
//! address they serve on. Tests, benchmarks and the demo start the binaries and wait for
//! these lines: an event, never a sleep.

/// `onboard-worker`: `<WORKER> http://127.0.0.1:<port>/metrics`.
pub const WORKER: &str = "onboard-worker ready: metrics on";

/// `onboard-sandbox`: `<SANDBOX> http://127.0.0.1:<port>`.
pub const SANDBOX: &str = "onboard-sandbox listening on";

/// `onboard-producer serve`: `<SERVER> http://127.0.0.1:<port>`.
pub const SERVER: &str = "onboard-producer serving the HTTP API on";
