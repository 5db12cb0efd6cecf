//! Flags of the web UI's sign-in sessions: how long a session lives idle
//! and at most, how many the server keeps, and whether its cookie is
//! marked `Secure`.

use std::time::Duration;

use crate::Error;

/// Flags of the web UI's sessions.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// A UI session unused for this many seconds ends.
    #[arg(long, env = "VEXIL_UI_SESSION_IDLE_SECS", default_value_t = 1800)]
    pub(crate) ui_session_idle_secs: u64,
    /// A UI session ends this many seconds after sign-in, used or not.
    #[arg(long, env = "VEXIL_UI_SESSION_MAX_SECS", default_value_t = 43_200)]
    pub(crate) ui_session_max_secs: u64,
    /// Most UI sessions kept at once; signing in beyond it ends the least
    /// recently used one.
    #[arg(long, env = "VEXIL_UI_MAX_SESSIONS", default_value_t = 1000)]
    pub(crate) ui_max_sessions: usize,
    /// Mark the session cookie `Secure` (the browser then sends it over
    /// HTTPS only): set it when the UI is reached through TLS.
    #[arg(long, env = "VEXIL_UI_SECURE_COOKIE")]
    pub(crate) ui_secure_cookie: bool,
}

/// The web UI's session settings, checked.
#[derive(Debug, Clone)]
pub(crate) struct UiConfig {
    pub(crate) idle: Duration,
    pub(crate) absolute: Duration,
    pub(crate) max_sessions: usize,
    pub(crate) secure_cookie: bool,
}

impl UiArgs {
    pub(crate) fn check(self) -> Result<UiConfig, Error> {
        ensure!(
            (1..=86_400).contains(&self.ui_session_idle_secs),
            "--ui-session-idle-secs must be between 1 and 86400"
        );
        ensure!(
            (1..=2_592_000).contains(&self.ui_session_max_secs),
            "--ui-session-max-secs must be between 1 and 2592000"
        );
        ensure!(
            (1..=1_000_000).contains(&self.ui_max_sessions),
            "--ui-max-sessions must be between 1 and 1000000"
        );
        Ok(UiConfig {
            idle: Duration::from_secs(self.ui_session_idle_secs),
            absolute: Duration::from_secs(self.ui_session_max_secs),
            max_sessions: self.ui_max_sessions,
            secure_cookie: self.ui_secure_cookie,
        })
    }
}
