//! onboard-shared: everything both binaries need.
//!
//! * [`jobs`]: the four job payloads and their validation;
//! * [`secret`]: the redacted secret type and log masking;
//! * [`validation`]: the field rules every job passes before it is enqueued;
//! * [`normalize`]: the one input normalisation the CLI and backfills apply before them;
//! * [`provider_error`]: the one classification of provider failures;
//! * [`providers`]: one module per provider API (signer, client, error mapping);
//! * [`config`]: TOML + `ONBOARD_*` configuration;
//! * [`redis_link`]: the connection to one Redis server or a Redis Cluster (replaced when a
//!   cluster connection wedges).

pub mod clock;
pub mod config;
pub mod events;
pub mod jobs;
pub mod masked;
pub mod normalize;
pub mod provider_error;
pub mod providers;
pub mod queue;
pub mod ratelimit;
pub mod ready;
pub mod redis_link;
pub mod secret;
pub mod validation;

pub use provider_error::{ErrorClass, ProviderError, ThrottledBy};
pub use secret::Secret;
