//! The Vexil server as a library.
//!
//! - [`run`] serves until shutdown: it opens the configured store, loads
//!   every environment's snapshot, follows other servers' changes and
//!   accepts HTTP connections on a listener the caller owns.
//! - [`config`] is the command line of `vexil serve` (flags with `VEXIL_*`
//!   fallbacks), validated into a [`config::Config`].
//!
//! The `vexil` binary is a thin layer over this crate; tests run the
//! server in-process through the same [`run`].

#![deny(missing_docs)]

mod api;
mod clock;
pub mod config;
mod control;
mod edge;
mod error;
mod grpc;
mod http;
mod keys;
mod metrics;
mod plane;
mod serve;
mod state;
mod timed_store;

pub use clock::{Clock, SystemClock};
pub use edge::run_edge;
pub use error::Error;
pub use serve::{migrate, run};

/// Every route the server answers, as (method, path template with
/// `{parameters}`), taken from the routers themselves: for tests and tools
/// that must cover every route.
pub fn routes() -> Vec<(axum::http::Method, String)> {
    api::route_list()
}

/// Writes one line to standard output for a long-running server: the
/// listening address, an admin key shown once. A server keeps serving when
/// nobody reads its standard output any more, so write errors are ignored.
pub fn notice(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
}
