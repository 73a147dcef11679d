//! Tencent Cloud error codes mapped onto [`ProviderError`] classes, exactly as PROVIDERS.md
//! lists them for the partner API.

use crate::{ProviderError, ThrottledBy};
use std::time::Duration;

/// Wait after `RequestLimitExceeded` (the provider gives no figure).
pub const THROTTLE_WAIT: Duration = Duration::from_secs(1);

/// Wait after the one-code-per-60-seconds rule.
pub const RESEND_WAIT: Duration = Duration::from_secs(60);

/// Classifies one error answer.
pub fn classify(code: &str, message: &str) -> ProviderError {
    match code {
        "InternalError" | "OperationDenied.ServiceBusy" => ProviderError::transient(code, message),
        // A clock problem, not a credential one: the next attempt is signed afresh.
        "AuthFailure.SignatureExpire" => ProviderError::transient(code, message),
        c if c == "RequestLimitExceeded" || c.starts_with("RequestLimitExceeded.") => {
            ProviderError::throttled(ThrottledBy::Provider, code, THROTTLE_WAIT)
        }
        // One code per phone per 60 seconds: a rule about one phone, so it defers this job
        // only and must not pause every worker.
        "FailedOperation.SendVerifyCodeLimit" | "FailedOperation.SendVerifyCodeLimit60" => {
            ProviderError::throttled(ThrottledBy::PerPhoneRule, code, RESEND_WAIT)
        }
        "FailedOperation.VerificationCodeIllegal" => ProviderError::CodeRejected {
            code: code.to_string(),
            message: message.to_string(),
        },
        // AuthFailure.*, UnauthorizedOperation, FailedOperation.MailIsRegistered,
        // PhoneBindUpper, ExceedMaxBindCount, InvalidParameter(Value).*, and anything
        // undocumented.
        _ => ProviderError::permanent(code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass::*;

    #[test]
    fn every_listed_code() {
        let cases = [
            ("InternalError", Transient),
            ("OperationDenied.ServiceBusy", Transient),
            ("AuthFailure.SignatureExpire", Transient),
            ("RequestLimitExceeded", Throttled),
            ("RequestLimitExceeded.UinLimitExceeded", Throttled),
            ("FailedOperation.SendVerifyCodeLimit", Throttled),
            ("FailedOperation.SendVerifyCodeLimit60", Throttled),
            ("FailedOperation.VerificationCodeIllegal", CodeRejected),
            ("AuthFailure.SignatureFailure", Permanent),
            ("AuthFailure.SecretIdNotFound", Permanent),
            ("UnauthorizedOperation", Permanent),
            ("FailedOperation.MailIsRegistered", Permanent),
            ("FailedOperation.PhoneBindUpper", Permanent),
            ("FailedOperation.ExceedMaxBindCount", Permanent),
            ("InvalidParameterValue.UnSupportArea", Permanent),
            ("InvalidParameter.PasswordFormatIncorrect", Permanent),
        ];
        for (code, class) in cases {
            assert_eq!(classify(code, "m").class(), class, "{code}");
        }
        assert_eq!(
            classify("FailedOperation.SendVerifyCodeLimit60", ""),
            ProviderError::Throttled {
                code: "FailedOperation.SendVerifyCodeLimit60".into(),
                retry_after: RESEND_WAIT,
                by: ThrottledBy::PerPhoneRule,
            }
        );
    }
}
