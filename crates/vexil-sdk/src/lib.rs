//! Vexil's Rust SDK: flags evaluated in-process on a snapshot that follows
//! a Vexil server or edge.
//!
//! - [`Client`]: the SDK's face. Typed getters (`bool_value`, …) that never
//!   block and never panic, details with the version that answered,
//!   change listeners, a bootstrap file for an offline start, a disk
//!   cache.
//! - [`Follower`]: the engine under it, shared with the edge: snapshot
//!   download, the change stream resumed with `Last-Event-ID`, each
//!   version compiled once and swapped in atomically, reconnects with
//!   jittered back-off, polling while the stream fails.
//! - [`cache`]: the last known state on disk, written atomically and read
//!   back only when its checksum holds.
//! - [`openfeature`]: an OpenFeature provider over a [`Client`].
//!
//! ```no_run
//! # async fn run() -> Result<(), vexil_sdk::Error> {
//! use std::time::Duration;
//! use vexil_sdk::{Client, Context};
//!
//! let client = Client::builder()
//!     .upstream("http://127.0.0.1:8080", "vxs_server_key")
//!     .build()?;
//! client.wait_ready(Duration::from_secs(5)).await?;
//! let ctx = Context::new().with_targeting_key("user-42");
//! if client.bool_value("new-checkout", &ctx, false) {
//!     // the new checkout
//! }
//! # Ok(())
//! # }
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

pub mod cache;
mod client;
mod error;
mod followed;
pub mod follower;
pub mod openfeature;
mod slot;

pub use client::{Changed, Client, ClientBuilder, Details, ErrorCode, ListenerId, WeakClient};
pub use error::{Error, ErrorKind};
pub use followed::{Followed, Origin, Seed};
pub use follower::{Follower, FollowerConfig, State, Status, Update, Updates};
pub use vexil_engine::{Context, Reason};
