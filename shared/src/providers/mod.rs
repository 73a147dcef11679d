//! Provider API clients: one module per provider.
