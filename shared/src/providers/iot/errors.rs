//! IoT Explorer error codes mapped onto [`ProviderError`] classes.
//!
//! PROVIDERS.md lists the codes but gives IoT no classes; the convention here follows the
//! Tencent Cloud one: server errors are retried, throttling waits, everything that names a
//! bad parameter, key or signature fails at once with the provider's code and message.

use crate::{ProviderError, ThrottledBy};
use std::time::Duration;

/// How long to wait when IoT Explorer throttles without saying for how long.
pub const THROTTLE_WAIT: Duration = Duration::from_secs(1);

/// Classifies one IoT Explorer error answer.
pub fn classify(code: &str, message: &str) -> ProviderError {
    match code {
        "InternalError" | "InternalError.ServiceBusy" | "ResourceUnavailable" => {
            ProviderError::transient(code, message)
        }
        c if c.starts_with("RequestLimitExceeded") => {
            ProviderError::throttled(ThrottledBy::Provider, code, THROTTLE_WAIT)
        }
        // ErrorRequiredParamNotFound, InvalidAction, InvalidParameterValue (bad signature,
        // customer exists), InvalidParameterValue.InvalidJSON, `invalid CustomerId`,
        // `invalid Email`, `invalid Phone`, `invalid CustomerId or invalid ServiceAppKey`,
        // and anything undocumented: repeating the same request cannot help.
        _ => ProviderError::permanent(code, message),
    }
}

/// Whether a ServiceCreateCustomer answer means the customer exists already (IoT gives it
/// no code of its own: `InvalidParameterValue` saying so).
pub fn is_already_exists(err: &ProviderError) -> bool {
    matches!(err, ProviderError::Permanent { code, message }
        if code == "InvalidParameterValue" && message.to_ascii_lowercase().contains("exist"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn already_exists() {
        assert!(is_already_exists(&classify(
            "InvalidParameterValue",
            "customer already exists"
        )));
        assert!(!is_already_exists(&classify(
            "InvalidParameterValue",
            "Signature 无效"
        )));
        assert!(!is_already_exists(&classify("invalid Phone", "exists")));
    }

    #[test]
    fn classes() {
        assert_eq!(classify("InternalError", "").class(), ErrorClass::Transient);
        assert_eq!(
            classify("RequestLimitExceeded", "").class(),
            ErrorClass::Throttled
        );
        for code in [
            "InvalidParameterValue",
            "ErrorRequiredParamNotFound",
            "InvalidAction",
            "invalid CustomerId",
            "invalid CustomerId or invalid ServiceAppKey",
        ] {
            assert_eq!(classify(code, "m").class(), ErrorClass::Permanent, "{code}");
        }
    }
}
