//! Mutex locking that survives poisoning.
//!
//! A handler that panicked while holding a lock must not take the whole sandbox down with it:
//! the state is plain data, so the inner value is still usable.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering the guard if a previous holder panicked.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
