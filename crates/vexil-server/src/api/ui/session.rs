//! The web UI's sign-in sessions: an admin key exchanged for a random
//! session id held in an `HttpOnly` cookie, kept in memory with an idle and
//! an absolute expiry and a bound on their number, each with the token
//! that state-changing requests must carry (`X-CSRF-Token`).
//!
//! The table keeps the SHA-256 of the session id, not the id, and the hash
//! of the key the session was made from (never the key): every request
//! looks the key up again, so revoking it ends its sessions at once.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, header};
use tokio::time::Instant;

use crate::config::UiConfig;
use crate::keys;

/// The cookie holding the session id.
pub(crate) const COOKIE: &str = "vexil_session";

/// The header carrying a session's CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// One signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The stored (hex SHA-256) hash of the admin key signed in with.
    pub(crate) key_hash: String,
    /// Sent back by the UI in `X-CSRF-Token` on every state-changing
    /// request: a page of another site can make the browser send the
    /// cookie, but cannot read this token nor set the header.
    pub(crate) csrf: String,
    created: Instant,
    last_used: Instant,
}

/// The sessions of this server (not shared between servers: a browser
/// signs in again on another one).
pub(crate) struct Sessions {
    config: UiConfig,
    table: Mutex<HashMap<keys::Digest, Session>>,
}

impl Sessions {
    pub(crate) fn new(config: UiConfig) -> Sessions {
        Sessions {
            config,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<keys::Digest, Session>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_used) < self.config.idle
            && now.duration_since(s.created) < self.config.absolute
    }

    /// Opens a session for the key with stored hash `key_hash`: returns
    /// the session id (for the cookie) and the session.
    pub(crate) fn open(&self, key_hash: String) -> Result<(String, Session), crate::Error> {
        let id = random_hex()?;
        let now = Instant::now();
        let session = Session {
            key_hash,
            csrf: random_hex()?,
            created: now,
            last_used: now,
        };
        let mut table = self.table();
        if table.len() >= self.config.max_sessions {
            table.retain(|_, s| self.alive(s, now));
        }
        while table.len() >= self.config.max_sessions {
            let oldest = table
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => table.remove(&k),
                None => break,
            };
        }
        table.insert(keys::digest(&id), session.clone());
        Ok((id, session))
    }

    /// The live session with this id, its idle time restarted; an expired
    /// one is removed.
    pub(crate) fn touch(&self, id: &str) -> Option<Session> {
        let digest = keys::digest(id);
        let now = Instant::now();
        let mut table = self.table();
        let session = table.get_mut(&digest)?;
        if !self.alive(session, now) {
            table.remove(&digest);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Whether the session is still live, without counting this as use
    /// (the UI's event stream asks, to end when its session does).
    pub(crate) fn is_live(&self, id: &str) -> bool {
        let now = Instant::now();
        self.table()
            .get(&keys::digest(id))
            .is_some_and(|s| self.alive(s, now))
    }

    /// Ends a session (sign-out).
    pub(crate) fn close(&self, id: &str) {
        self.table().remove(&keys::digest(id));
    }

    /// The `Set-Cookie` value of a new session.
    pub(crate) fn cookie(&self, id: &str) -> HeaderValue {
        let secure = if self.config.secure_cookie {
            "; Secure"
        } else {
            ""
        };
        let value = format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.config.absolute.as_secs()
        );
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub(crate) fn cleared_cookie(&self) -> HeaderValue {
        let secure = if self.config.secure_cookie {
            "; Secure"
        } else {
            ""
        };
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
        ))
        .unwrap_or(HeaderValue::from_static(""))
    }
}

/// The session id a request's `Cookie` headers carry, if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Whether a state-changing request made with a session cookie may go
/// ahead: it carries the session's CSRF token, and the browser does not
/// say it comes from another site.
pub(crate) fn csrf_ok(headers: &HeaderMap, session: &Session) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    let token = headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    !cross_site && constant_time_eq(token, session.csrf.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex() -> Result<String, crate::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| crate::Error::Randomness(e.to_string()))?;
    Ok(keys::hex(&bytes))
}
