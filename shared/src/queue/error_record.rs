//! Why an attempt failed, as stored on the job, in the dead-letter set and in events: a
//! class, a code and a message, as JSON `{"class", "code", "message"}`.

use crate::{ErrorClass, ProviderError};
use serde::{Deserialize, Serialize};

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The class (stored as its snake_case label).
    pub class: ErrorClass,
    /// The provider's code, or our own label (`DependencyFailed`, `EffectUncertain`, ...).
    pub code: String,
    /// The provider's message, or our explanation.
    pub message: String,
}

impl ErrorRecord {
    /// A record of our own making.
    pub fn new(class: ErrorClass, code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorRecord {
            class,
            code: code.into(),
            message: message.into(),
        }
    }

    /// The record of a provider error.
    pub fn from_provider(err: &ProviderError) -> Self {
        ErrorRecord {
            class: err.class(),
            code: err.code().to_string(),
            message: match err {
                ProviderError::Throttled { retry_after, .. } => {
                    format!("throttled; retry after {} ms", retry_after.as_millis())
                }
                other => other.message().to_string(),
            },
        }
    }

    /// The JSON text stored in Redis.
    pub fn to_json(&self) -> String {
        // Serialising an enum label and two strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses stored JSON text; `None` when it is not an error record.
    pub fn parse(text: &str) -> Option<ErrorRecord> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_keep_their_labels() {
        let rec = ErrorRecord::new(ErrorClass::DependencyFailed, "DependencyFailed", "m");
        assert_eq!(
            rec.to_json(),
            r#"{"class":"dependency","code":"DependencyFailed","message":"m"}"#
        );
        for class in [
            "transient",
            "permanent",
            "undecodable",
            "throttled",
            "outcome_unknown",
        ] {
            let text = format!(r#"{{"class":"{class}","code":"c","message":"m"}}"#);
            let rec = ErrorRecord::parse(&text).expect("parses");
            assert_eq!(rec.class.as_str(), class);
            assert_eq!(rec.to_json(), text, "round trip");
        }
        let odd = ErrorRecord::parse(r#"{"class":"from-the-future","code":"c","message":"m"}"#);
        assert_eq!(odd.map(|r| r.class), Some(ErrorClass::Unknown));
    }
}
