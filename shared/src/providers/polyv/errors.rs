//! POLYV answers mapped onto [`ProviderError`] classes. POLYV puts its verdict in the body's
//! `code`, not the HTTP status, so that is what is branched on.

use crate::{ProviderError, ThrottledBy};
use std::time::Duration;

/// Wait after a POLYV throttling answer that does not say how long. Going over the domain
/// limit blocks the client IP for 5 minutes, so every worker pauses that long (the shared
/// cool-down).
pub const THROTTLE_WAIT: Duration = Duration::from_secs(300);

/// A throttling answer; `retry_after` is the HTTP `Retry-After` when the answer had one.
pub fn throttled(retry_after: Option<Duration>) -> ProviderError {
    ProviderError::throttled(
        ThrottledBy::Provider,
        "429",
        retry_after.unwrap_or(THROTTLE_WAIT),
    )
}

/// Classifies an error answer: the body's `code` and `message`.
pub fn classify(code: i64, message: &str) -> ProviderError {
    let label = code.to_string();
    match code {
        // A clock or stale-signature problem: the next attempt is signed afresh.
        400 if message.trim() == "invalid timestamp." => ProviderError::transient(label, message),
        429 => throttled(None),
        c if c >= 500 => ProviderError::transient(label, message),
        // 400 parameter problems (duplicate e-mail or mobile, param validate error, unknown
        // application), 401/403 signature problems: repeating cannot help.
        _ => ProviderError::permanent(label, message),
    }
}

/// Whether an add-custom-user error means a user with this e-mail exists already.
pub fn is_already_exists(err: &ProviderError) -> bool {
    matches!(err, ProviderError::Permanent { code, message }
        if code == "400" && message.to_ascii_lowercase().contains("already"))
}

/// Whether a get-custom-user error means "no such user".
pub fn is_not_found(code: i64, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code == 400 && message.contains("user") && message.contains("not found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn classes() {
        assert_eq!(
            classify(400, "invalid timestamp.").class(),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(400, "email already registered.").class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            classify(403, "invalid signature.").class(),
            ErrorClass::Permanent
        );
        assert_eq!(classify(500, "server error").class(), ErrorClass::Transient);
        assert_eq!(classify(429, "").class(), ErrorClass::Throttled);
        assert_eq!(
            throttled(Some(Duration::from_secs(1))),
            ProviderError::Throttled {
                code: "429".into(),
                retry_after: Duration::from_secs(1),
                by: ThrottledBy::Provider,
            }
        );
        assert!(is_not_found(400, "user not found."));
        assert!(is_already_exists(&classify(
            400,
            "email already registered."
        )));
        assert!(!is_already_exists(&classify(400, "param validate error")));
        assert!(!is_not_found(400, "application not found."));
        assert!(!is_not_found(500, "user not found."));
    }
}
