//! Vexil's wire formats, each defined once with both its encoding and its
//! decoding: the server encodes what the edge and the SDK decode with the
//! same code.
//!
//! - [`url`]: the one percent-encoder and decoder.
//!
//! Everything here is pure: no I/O, no clock, no async runtime.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

pub mod url;
