//! The crate's one error: why a stream could not be decoded.
//!
//! Request bodies are not decoded with it: their problems are messages
//! for the `errorDetails` or `message` of a 400 answer (see
//! [`crate::ofrep::parse_context`] and [`crate::native::parse_native_request`]).

/// Why an event stream, or one of its events, could not be decoded. After
/// any of these the stream cannot be trusted: drop the connection and
/// reconnect (with [`crate::sse::Decoder::last_event_id`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line, or an event's data, grew past the decoder's bound.
    #[error("server-sent event larger than the limit of {limit} bytes")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// A `snapshot` or `change` event came without the `id` that names
    /// its version.
    #[error("`{event}` event without an id")]
    MissingId {
        /// The event type.
        event: &'static str,
    },
    /// The `id` of a `snapshot` or `change` event is not a version number.
    #[error("`{event}` event has id `{id}`, not a version number")]
    InvalidId {
        /// The event type.
        event: &'static str,
        /// The id as received.
        id: String,
    },
    /// A `change` event's id and the version in its data differ.
    #[error("`change` event has id {id} but carries version {version}")]
    VersionMismatch {
        /// The version in the `id` field.
        id: i64,
        /// The version in the data.
        version: i64,
    },
    /// An event's data is not the JSON its type calls for.
    #[error("`{event}` event data is invalid: {source}")]
    InvalidData {
        /// The event type.
        event: &'static str,
        /// What the JSON parser found.
        #[source]
        source: serde_json::Error,
    },
    /// A `snapshot` event's data is not a JSON object.
    #[error("`snapshot` event data is not a JSON object")]
    NotADocument,
    /// A snapshot's document does not parse as a native document.
    #[error("snapshot document is invalid: {0}")]
    InvalidDocument(#[source] vexil_engine::LoadError),
}
