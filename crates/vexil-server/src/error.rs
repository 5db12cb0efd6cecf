//! `Error`: why the server could not start or stopped. Request errors are
//! `api::error::ApiError`; this is for `run`, `migrate` and configuration.

/// Why the server could not start (or had to stop).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line or environment holds an invalid setting; the
    /// message names the flag.
    #[error("{0}")]
    Config(String),
    /// The store could not be opened, migrated or bootstrapped.
    #[error(transparent)]
    Store(#[from] vexil_store::StoreError),
    /// A socket or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `cannot listen on 127.0.0.1:8080`.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The system could not provide randomness for a new key.
    #[error("no randomness for an API key: {0}")]
    Randomness(String),
}
