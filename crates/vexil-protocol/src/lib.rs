//! Vexil's wire formats, each defined once with both its encoding and its
//! decoding: the server encodes what the edge and the SDK decode with the
//! same code.
//!
//! - [`event`]: what a change stream carries (snapshots, changes, the OFREP
//!   `refetchEvaluation` message).
//! - [`sse`]: server-sent event framing, and an incremental, bounded
//!   decoder of event streams.
//! - [`ofrep`]: OFREP request and answer bodies, and the CLI's report of
//!   one evaluation.
//! - [`native`]: the bodies of `POST /api/v1/evaluate`.
//! - [`url`]: the one percent-encoder and decoder.
//! - [`json`]: infallible JSON writing into a `Vec<u8>`.
//!
//! Everything here is pure: no I/O, no clock, no async runtime. Encoders
//! write straight into a `Vec<u8>` from borrowed data (no intermediate
//! `serde_json::Value`), as they run on the server's hot path.
//!
//! ```
//! use vexil_protocol::event::{Action, ChangedItem, Event, ItemKind, change_frame};
//! use vexil_protocol::sse::Decoder;
//!
//! let definition = serde_json::json!({"variants": {"on": true}});
//! let frame = change_frame(7, &[ChangedItem {
//!     kind: ItemKind::Flag,
//!     key: "checkout",
//!     action: Action::Create,
//!     definition: Some(&definition),
//!     archived: false,
//! }]);
//! let mut decoder = Decoder::new();
//! decoder.feed(&frame);
//! let frame = decoder.next_frame().unwrap().unwrap();
//! let Event::Change(change) = Event::from_frame(frame).unwrap() else { panic!() };
//! assert_eq!((change.version, change.changes[0].key.as_str()), (7, "checkout"));
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

pub mod bulk;
mod error;
pub mod event;
pub mod json;
pub mod native;
pub mod ofrep;
pub mod sse;
pub mod url;

pub use error::Error;
