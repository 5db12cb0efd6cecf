//! The shared test server and its helpers (in `vexil-test-support`).

pub(crate) use vexil_test_support::server::*;
