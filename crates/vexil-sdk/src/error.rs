//! The crate's one error: what went wrong (`ErrorKind`), a message naming
//! the thing involved, and the underlying error when there is one.

use std::fmt;

/// What kind of problem an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration cannot work: a malformed URL, an `https` URL
    /// (TLS is not built in), no tokio runtime to run on.
    Config,
    /// The upstream could not be reached or did not answer in time:
    /// connection refused or reset, timeouts, `429`, `5xx`, a stream that
    /// ended or went silent.
    Unavailable,
    /// The upstream answered and refused this client: `401`, `403` or
    /// `404` (a wrong key, or a URL that is not a Vexil server or edge).
    /// Retrying does not help until someone changes the key or the URL.
    Refused,
    /// The upstream answered something this SDK cannot read: an
    /// unexpected status or content type, an undecodable event, a body
    /// over the size limit.
    Protocol,
    /// A document does not parse or does not compile (a version refused
    /// by the follower, a bootstrap file, a cached document).
    Invalid,
    /// A cache file is truncated, corrupt or of an unknown format.
    Corrupt,
    /// Reading or writing a file failed.
    Io,
    /// Waiting for something took longer than allowed.
    Timeout,
    /// The follower has stopped.
    Stopped,
}

impl ErrorKind {
    /// A short lowercase name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Refused => "refused",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Io => "io",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Stopped => "stopped",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SDK's error: a kind, a message naming what was involved, and the
/// underlying error when there is one (see [`std::error::Error::source`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error without an underlying cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source`.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source's.
    pub fn message(&self) -> &str {
        &self.message
    }
}
