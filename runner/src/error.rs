//! The one error type of the runner: a message plus the [`ErrorClass`] the controller
//! uses to decide whether to retry. Every op returns it; the session turns it into an
//! `error` frame.

use std::fmt;
use std::io;
use std::path::Path;

use crate::protocol::ErrorClass;

/// A failed op, already classified for the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub class: ErrorClass,
    pub message: String,
}

impl OpError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }

    /// Bad input, a missing file, permission denied: retrying will not help.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, message)
    }

    /// The target changed under us.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Conflict, message)
    }

    /// Retrying later may succeed.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, message)
    }

    /// An I/O error about `path`, classified by its kind.
    pub fn io(path: &Path, err: &io::Error) -> Self {
        Self::new(classify(err), format!("`{}`: {err}", path.display()))
    }

    /// An I/O error while doing `what`, classified by its kind.
    pub fn io_doing(what: &str, err: &io::Error) -> Self {
        Self::new(classify(err), format!("{what}: {err}"))
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

/// The class of an I/O error: "try again" errors are transient, "exists" is a
/// conflict (somebody else created the path between our check and our write), the
/// rest is permanent.
pub fn classify(err: &io::Error) -> ErrorClass {
    use io::ErrorKind as K;
    match err.kind() {
        K::AlreadyExists => ErrorClass::Conflict,
        K::WouldBlock
        | K::Interrupted
        | K::TimedOut
        | K::ResourceBusy
        | K::ExecutableFileBusy
        | K::OutOfMemory
        | K::StorageFull => ErrorClass::Transient,
        _ => match err.raw_os_error() {
            // EAGAIN, ENFILE, EMFILE: the machine is busy, not the request wrong.
            Some(11 | 23 | 24) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified_by_kind() {
        let cases = [
            (
                io::Error::from(io::ErrorKind::NotFound),
                ErrorClass::Permanent,
            ),
            (
                io::Error::from(io::ErrorKind::PermissionDenied),
                ErrorClass::Permanent,
            ),
            (
                io::Error::from(io::ErrorKind::AlreadyExists),
                ErrorClass::Conflict,
            ),
            (
                io::Error::from(io::ErrorKind::WouldBlock),
                ErrorClass::Transient,
            ),
            (io::Error::from_raw_os_error(24), ErrorClass::Transient),
            (io::Error::from_raw_os_error(21), ErrorClass::Permanent),
        ];
        for (err, class) in cases {
            assert_eq!(classify(&err), class, "{err}");
        }
    }

    #[test]
    fn io_messages_name_the_path_in_backticks() {
        let err = OpError::io(Path::new("/etc/x"), &io::Error::from_raw_os_error(2));
        assert_eq!(
            err.message,
            "`/etc/x`: No such file or directory (os error 2)"
        );
    }
}
