//! The store's error type: a kind callers branch on, and the cause.

use std::fmt;

/// What kind of failure, for callers to map to responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for does not exist.
    NotFound,
    /// Something with that key exists already.
    AlreadyExists,
    /// The environment changed since the version the write was based on.
    Conflict,
    /// The database cannot be reached or timed out; retrying may help.
    Unavailable,
    /// This store does not accept writes (flags served from a file).
    ReadOnly,
    /// The input cannot be stored as given (e.g. text with a NUL
    /// character, which PostgreSQL refuses and SQLite would keep): every
    /// backend refuses it the same way.
    Invalid,
    /// Anything else (a bug, corrupt data).
    Internal,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub struct StoreError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What failed, for logs and messages.
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl StoreError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn db(context: &str, e: sqlx::Error) -> Self {
        let kind = match &e {
            sqlx::Error::RowNotFound => ErrorKind::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => ErrorKind::AlreadyExists,
            // PostgreSQL: connection exceptions (08…), the server shutting
            // down or not accepting connections yet (57P…), the database
            // gone (3D000). Retrying later may help.
            sqlx::Error::Database(d)
                if d.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("57P") || c == "3D000"
                }) =>
            {
                ErrorKind::Unavailable
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        StoreError {
            kind,
            message: context.to_owned(),
            source: Some(Box::new(e)),
        }
    }
}
