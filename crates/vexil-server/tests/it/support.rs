//! The shared test server and its helpers (in `vexil-test-support`).

pub(crate) use vexil_test_support::server::*;

/// Held by the tests whose time bounds a busy machine can break (a stream
/// that must not stall, a compile that must be stopped in time) and by the
/// browser test, which keeps a Chromium busy for a minute: they never run
/// at the same time. (A tokio mutex: each test has its own runtime, and a
/// test that panicked does not poison it.)
pub(crate) static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes [`EXCLUSIVE`].
pub(crate) async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.lock().await
}
