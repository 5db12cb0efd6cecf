//! The configuration as `vexil serve` and `vexil edge` print it at start:
//! every setting, secrets masked.

use std::fmt;

use super::{AdminKeySource, Config, PlaneConfig, StoreConfig};

/// Hides the password of a URL.
pub(super) fn mask_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:****{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  listen          {}", self.listen)?;
        match &self.store {
            StoreConfig::Sqlite(dir) => {
                writeln!(f, "  store           sqlite ({})", dir.display())?
            }
            StoreConfig::Postgres(url) => {
                writeln!(f, "  store           postgres ({})", mask_url(url))?
            }
            StoreConfig::File(path) => writeln!(
                f,
                "  store           read-only flag file ({}), watched",
                path.display()
            )?,
        }
        let file = matches!(self.store, StoreConfig::File(_));
        writeln!(
            f,
            "  admin key       {}",
            match (self.admin_key_source, file) {
                (AdminKeySource::Flag, _) => "from --admin-key (****)",
                (AdminKeySource::Env, _) => "from VEXIL_ADMIN_KEY (****)",
                (AdminKeySource::None, _) if self.admin_key.is_some() => "given (****)",
                (AdminKeySource::None, true) => "random for this run (printed below)",
                (AdminKeySource::None, false) => "stored (created on first start)",
            }
        )?;
        if file {
            writeln!(
                f,
                "  evaluation keys {} server, {} client (****)",
                self.file_keys.server.len(),
                self.file_keys.client.len()
            )?;
        }
        writeln!(f, "  sync interval   {} ms", self.sync_interval.as_millis())?;
        writeln!(
            f,
            "  admin rate      {} per key",
            rate(self.rate_limit_admin)
        )?;
        writeln!(
            f,
            "  ui sessions     idle {} s, at most {} s, {} kept, cookie{}",
            self.ui.idle.as_secs(),
            self.ui.absolute.as_secs(),
            self.ui.max_sessions,
            if self.ui.secure_cookie {
                " Secure"
            } else {
                " not Secure"
            }
        )?;
        plane(f, &self.plane)
    }
}

/// A rate limit as people read it.
fn rate(r: f64) -> String {
    if r > 0.0 {
        format!("{r}/s")
    } else {
        "unlimited".to_owned()
    }
}

/// The settings `vexil serve` and `vexil edge` share.
pub(super) fn plane(f: &mut fmt::Formatter<'_>, p: &PlaneConfig) -> fmt::Result {
    writeln!(f, "  max body bytes  {}", p.http.max_body_bytes)?;
    writeln!(
        f,
        "  rate limits     server {}, client {} per key",
        rate(p.rate_limit_server),
        rate(p.rate_limit_client)
    )?;
    writeln!(f, "  max in flight   {}", p.max_in_flight)?;
    writeln!(
        f,
        "  timeouts        headers {} ms, body {} ms, idle {} ms",
        p.http.header_timeout.as_millis(),
        p.http.body_timeout.as_millis(),
        p.http.idle_timeout.as_millis()
    )?;
    match p.http.max_connections {
        0 => writeln!(f, "  max connections from the open-file limit")?,
        n => writeln!(f, "  max connections {n}")?,
    }
    super::grpc::banner(f, p.grpc.as_ref())?;
    write!(
        f,
        "  public url      {}",
        p.public_url.as_deref().unwrap_or("(none: relative URLs)")
    )
}
