//! The last known state on disk: one file per environment, written
//! atomically and read back only when it is whole, so that a process can
//! start (and serve) while its upstream is unreachable.
//!
//! # Files
//!
//! A [`Cache`] is a directory; each environment has a file of its own,
//! named after a label the caller chooses (the SDK's client derives one
//! from the upstream URL and key; an edge may use `project/environment`).
//! The label is written into the file name with every byte other than
//! ASCII letters, digits, `-` and `_` as `%XX` (so no label can name a
//! path outside the directory), followed by `.vexil-cache`.
//!
//! # Format
//!
//! ```text
//! vexil-cache 1 <payload length> <SHA-256 of the payload, hex>\n
//! {"label":"…","version":42,"keys":{…}|null}\n      <- payload: one meta line,
//! {"flags":{…}}                                      <- then the document's JSON
//! ```
//!
//! A file is refused ([`ErrorKind::Corrupt`]) when its first line is not
//! such a header, when the payload is shorter or longer than the header
//! says (a truncated write, an appended one), when the checksum does not
//! match, or when it holds another label's environment. Refused files are
//! never served; whether the document compiles is checked by whoever
//! serves it ([`Followed::from_seed`](crate::Followed::from_seed)).
//!
//! # Writing
//!
//! [`Cache::write`] writes a temporary file in the same directory, syncs
//! it, renames it over the old one and syncs the directory: a crash
//! leaves the old file or the new one, never a mix. Both calls block
//! (file I/O); async callers run them with `spawn_blocking`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use vexil_protocol::event::KeysEvent;

use crate::error::{Error, ErrorKind};
use crate::followed::Seed;

#[cfg(test)]
mod tests;

const MAGIC: &str = "vexil-cache";
const FORMAT: &str = "1";
const SUFFIX: &str = ".vexil-cache";
/// Longest file name written (most file systems stop at 255 bytes).
const MAX_NAME: usize = 200;

/// A directory of cache files, one per environment.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// The meta line of a cache file.
#[derive(Serialize, Deserialize)]
struct Meta<'a> {
    #[serde(borrow)]
    label: std::borrow::Cow<'a, str>,
    version: i64,
    keys: Option<KeysEvent>,
}

impl Cache {
    /// A cache in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the environment labelled `label`.
    pub fn path(&self, label: &str) -> Result<PathBuf, Error> {
        Ok(self.dir.join(file_name(label)?))
    }

    /// The state saved for `label`: `None` when there is no file; an
    /// [`ErrorKind::Corrupt`] error when the file is not whole.
    pub fn read(&self, label: &str) -> Result<Option<Seed>, Error> {
        let path = self.path(label)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::with_source(
                    ErrorKind::Io,
                    format!("cannot read cache file {}", path.display()),
                    e,
                ));
            }
        };
        decode(&bytes, label).map(Some).map_err(|e| {
            Error::new(
                e.kind(),
                format!("cache file {} refused: {}", path.display(), e.message()),
            )
        })
    }

    /// Saves `seed` as the state of `label`, atomically.
    pub fn write(&self, label: &str, seed: &Seed) -> Result<(), Error> {
        let path = self.path(label)?;
        let io = |what: &str, e: std::io::Error| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot write cache file {}: {what}", path.display()),
                e,
            )
        };
        fs::create_dir_all(&self.dir).map_err(|e| io("cannot create the directory", e))?;
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            file_name(label)?,
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            file.write_all(&encode(label, seed))?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io("writing the temporary file failed", e));
        }
        sync_dir(&self.dir).map_err(|e| io("cannot sync the directory", e))
    }
}

/// Numbers temporary files of this process apart.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Makes a rename durable: the directory entry is synced too.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Elsewhere a directory cannot be opened to sync it; the rename is as
/// durable as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The file name of a label (see the module documentation).
fn file_name(label: &str) -> Result<String, Error> {
    if label.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "a cache label cannot be empty",
        ));
    }
    let mut name = String::with_capacity(label.len() + SUFFIX.len());
    for b in label.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(SUFFIX);
    if name.len() > MAX_NAME {
        return Err(Error::new(
            ErrorKind::Config,
            format!("cache label `{label}` is too long for a file name"),
        ));
    }
    Ok(name)
}

/// A cache file's bytes.
pub(crate) fn encode(label: &str, seed: &Seed) -> Vec<u8> {
    let mut payload = vexil_protocol::json::encode(&Meta {
        label: label.into(),
        version: seed.version,
        keys: seed.keys.clone(),
    });
    payload.push(b'\n');
    payload.extend_from_slice(&seed.document);
    let mut out = format!(
        "{MAGIC} {FORMAT} {} {}\n",
        payload.len(),
        hex(&Sha256::digest(&payload))
    )
    .into_bytes();
    out.extend_from_slice(&payload);
    out
}

/// Reads a cache file's bytes, checking that they are whole and belong
/// to `label`.
pub(crate) fn decode(bytes: &[u8], label: &str) -> Result<Seed, Error> {
    let corrupt = |why: String| Error::new(ErrorKind::Corrupt, why);
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header line (empty or truncated file)".to_owned()))?;
    let header = std::str::from_utf8(&bytes[..end])
        .map_err(|_| corrupt("the header is not text: not a Vexil cache file".to_owned()))?;
    let payload = &bytes[end + 1..];
    let parts: Vec<&str> = header.split(' ').collect();
    let (length, checksum) = match parts.as_slice() {
        [MAGIC, FORMAT, length, checksum] => (*length, *checksum),
        [MAGIC, format, ..] => {
            return Err(corrupt(format!(
                "cache format `{format}` is not one this SDK reads ({FORMAT})"
            )));
        }
        _ => return Err(corrupt("not a Vexil cache file".to_owned())),
    };
    let length: usize = length
        .parse()
        .map_err(|_| corrupt(format!("bad payload length `{length}` in the header")))?;
    if payload.len() < length {
        return Err(corrupt(format!(
            "truncated: {} of {length} payload bytes",
            payload.len()
        )));
    }
    if payload.len() > length {
        return Err(corrupt(format!(
            "{} bytes after the {length} bytes of payload",
            payload.len() - length
        )));
    }
    if hex(&Sha256::digest(payload)) != checksum {
        return Err(corrupt(
            "checksum mismatch: the file was changed or damaged".to_owned(),
        ));
    }
    let meta_end = payload
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no meta line".to_owned()))?;
    let meta: Meta<'_> = serde_json::from_slice(&payload[..meta_end])
        .map_err(|e| corrupt(format!("bad meta line: {e}")))?;
    if meta.label != label {
        return Err(corrupt(format!("it holds `{}`, not `{label}`", meta.label)));
    }
    Ok(Seed {
        version: meta.version,
        document: Bytes::copy_from_slice(&payload[meta_end + 1..]),
        keys: meta.keys,
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The SHA-256 of `text` as lowercase hex (labels derived from secrets).
pub(crate) fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}
