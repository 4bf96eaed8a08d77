//! Provider errors with the engine's failure classes, so a provider says how a failure
//! should be treated (retry, back off, re-plan, give up) instead of only what failed.

use std::fmt;

use crate::ErrorClass;
use crate::bindings::froyo::provider::types::ProviderError as WitProviderError;

/// `Result` with a [`ProviderError`].
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

/// A domain error reported to the user with its class (the WIT `provider-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub class: ErrorClass,
    pub message: String,
}

impl ProviderError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        ProviderError {
            class,
            message: message.into(),
        }
    }

    /// Retrying will not help: bad input, a missing file, a command that failed.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, message)
    }

    /// Retrying later may succeed: a timeout, a busy resource.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, message)
    }

    /// The target changed under us: re-read and re-plan.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Conflict, message)
    }

    /// Retry after backing off: a rate limit.
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Throttled, message)
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        ProviderError {
            class: self.class,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.class {
            ErrorClass::Transient => "transient",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Permanent => "permanent",
        };
        write!(f, "{} ({class})", self.message)
    }
}

impl std::error::Error for ProviderError {}

impl From<ProviderError> for WitProviderError {
    fn from(e: ProviderError) -> Self {
        WitProviderError {
            class: e.class,
            message: e.message,
        }
    }
}

impl From<WitProviderError> for ProviderError {
    fn from(e: WitProviderError) -> Self {
        ProviderError {
            class: e.class,
            message: e.message,
        }
    }
}

/// Malformed JSON is the provider's or the runner's bug, never worth a retry.
impl From<serde_json::Error> for ProviderError {
    fn from(e: serde_json::Error) -> Self {
        ProviderError::permanent(format!("invalid JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_the_class() {
        assert_eq!(ProviderError::permanent("x").class, ErrorClass::Permanent);
        assert_eq!(ProviderError::transient("x").class, ErrorClass::Transient);
        assert_eq!(ProviderError::conflict("x").class, ErrorClass::Conflict);
        assert_eq!(ProviderError::throttled("x").class, ErrorClass::Throttled);
    }

    #[test]
    fn converts_to_and_from_the_wit_record() {
        let e = ProviderError::conflict("sha256 mismatch").context("file.write");
        let wit: WitProviderError = e.clone().into();
        assert_eq!(wit.class, ErrorClass::Conflict);
        assert_eq!(wit.message, "file.write: sha256 mismatch");
        assert_eq!(ProviderError::from(wit), e);
        assert_eq!(e.to_string(), "file.write: sha256 mismatch (conflict)");
    }
}
