//! Server-sent events: writing frames, and an incremental decoder that
//! follows the WHATWG event-stream parsing rules with a bound on memory.
//!
//! The framing only: Vexil's own events (`change`, `snapshot`, the OFREP
//! `refetchEvaluation` message) are built and read in `event`.

use std::collections::VecDeque;
use std::io::Write as _;

use crate::Error;

#[cfg(test)]
mod tests;

/// Appends one event to `out`: `id: <id>` (when given), `event: <event>`,
/// one `data: ` line per line of `data` (split at LF, CR and CRLF, as a
/// decoder would join them), and the blank line that dispatches it.
///
/// `event` is written as given, except that line breaks (which would end
/// the field early) are left out.
pub fn write_frame(out: &mut Vec<u8>, id: Option<i64>, event: &str, data: &[u8]) {
    out.reserve(data.len() + event.len() + 32);
    if let Some(id) = id {
        // Writing into a Vec cannot fail.
        let _ = writeln!(out, "id: {id}");
    }
    out.extend_from_slice(b"event: ");
    out.extend(event.bytes().filter(|b| !matches!(b, b'\r' | b'\n')));
    out.push(b'\n');
    write_data(out, data);
    out.push(b'\n');
}

/// One event as bytes (see [`write_frame`]).
pub fn encode_frame(id: Option<i64>, event: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, id, event, data);
    out
}

/// Writes `data` as `data: ` lines, one per line of it.
fn write_data(out: &mut Vec<u8>, data: &[u8]) {
    let mut rest = data;
    loop {
        out.extend_from_slice(b"data: ");
        match rest.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            None => {
                out.extend_from_slice(rest);
                out.push(b'\n');
                return;
            }
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.push(b'\n');
                let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
                rest = &rest[i + if crlf { 2 } else { 1 }..];
            }
        }
    }
}

/// The comment sent on idle streams, which keeps proxies from closing
/// them; decoders ignore it.
pub fn heartbeat() -> &'static [u8] {
    b": keepalive\n\n"
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The `id` field of this event, when it had one (see also
    /// [`Decoder::last_event_id`], which persists across events).
    pub id: Option<String>,
    /// The event type; `message` when the event named none.
    pub event: String,
    /// The `data` lines, joined with `\n`.
    pub data: String,
    /// The `retry` field of this event (milliseconds), when it had a valid
    /// one (see also [`Decoder::retry`]).
    pub retry: Option<u64>,
}

/// Bound on one line, and on one event's data, by default: a snapshot
/// event carries a whole environment.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 << 20;

/// An incremental event-stream decoder: feed it the bytes of a response
/// as they come, split anywhere, and take complete frames out.
///
/// It follows the WHATWG rules: lines end with LF, CR or CRLF; a leading
/// byte order mark is skipped; lines starting with `:` are comments; a
/// field without a colon has an empty value; one space after the colon is
/// dropped; `data` lines are joined with `\n`; a blank line dispatches;
/// an event without data is not dispatched; unknown fields are ignored;
/// an `id` containing NUL is ignored; an event left incomplete when the
/// stream ends is dropped (it is never dispatched).
///
/// What it holds is bounded: a line longer than the limit, or an event
/// whose data would grow past it, is an [`Error::TooLarge`], after which
/// the decoder takes nothing more.
///
/// ```
/// use vexil_protocol::sse::Decoder;
///
/// let mut decoder = Decoder::new();
/// decoder.feed(b"id: 3\nevent: change\nda");
/// assert!(decoder.next_frame().is_none());
/// decoder.feed(b"ta: {}\n\n");
/// let frame = decoder.next_frame().unwrap().unwrap();
/// assert_eq!((frame.id.as_deref(), frame.data.as_str()), (Some("3"), "{}"));
/// ```
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    /// The end of the last chunk, when it ended inside a line.
    line: Vec<u8>,
    /// The last chunk ended with CR: an LF starting the next one belongs
    /// to the same line end.
    after_cr: bool,
    /// Whether the first line was seen (a byte order mark may start it).
    started: bool,
    /// The event being read: its data (each line followed by `\n`), type,
    /// id and retry fields.
    data: String,
    event: String,
    event_id: Option<String>,
    event_retry: Option<u64>,
    /// The id of the last dispatched event that had one, as a
    /// reconnecting client sends it in `Last-Event-ID`.
    last_event_id: String,
    /// The last valid `retry` field, dispatched or not.
    retry: Option<u64>,
    ready: VecDeque<Frame>,
    /// Set once the bound was exceeded; reported once by `next_frame`.
    failed: Option<Error>,
    /// Whether the failure was reported: the decoder is done.
    done: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the default bound ([`DEFAULT_MAX_EVENT_BYTES`]).
    pub fn new() -> Self {
        Decoder::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A decoder whose lines, and events' data, may be at most
    /// `max_event_bytes` long.
    pub fn with_limit(max_event_bytes: usize) -> Self {
        Decoder {
            max: max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            started: false,
            data: String::new(),
            event: String::new(),
            event_id: None,
            event_retry: None,
            last_event_id: String::new(),
            retry: None,
            ready: VecDeque::new(),
            failed: None,
            done: false,
        }
    }

    /// Reads the next bytes of the stream. Complete events are queued for
    /// [`Decoder::next_frame`]; a partial line is kept for the next call.
    /// After an error, input is ignored.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_some() || self.done || chunk.is_empty() {
            return;
        }
        let mut rest = chunk;
        if std::mem::take(&mut self.after_cr) && rest[0] == b'\n' {
            rest = &rest[1..];
        }
        while let Some(i) = rest.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            let (line, end) = (&rest[..i], &rest[i..]);
            if self.line.is_empty() {
                self.line_end(line);
            } else if self.fits(self.line.len() + line.len()) {
                let mut buffered = std::mem::take(&mut self.line);
                buffered.extend_from_slice(line);
                self.line_end(&buffered);
                buffered.clear();
                self.line = buffered;
            }
            if self.failed.is_some() {
                return;
            }
            rest = match end {
                [b'\r', b'\n', more @ ..] => more,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, more @ ..] => more,
                [] => &[],
            };
        }
        if !rest.is_empty() && self.fits(self.line.len() + rest.len()) {
            self.line.extend_from_slice(rest);
        }
    }

    /// The next complete event, or the error that stopped the decoder
    /// (reported once; then `None` for good).
    pub fn next_frame(&mut self) -> Option<Result<Frame, Error>> {
        if let Some(frame) = self.ready.pop_front() {
            return Some(Ok(frame));
        }
        let error = self.failed.take()?;
        self.done = true;
        Some(Err(error))
    }

    /// The id of the last dispatched event that set one (empty when none
    /// did, or the last `id` field was empty): what a reconnecting client
    /// sends as `Last-Event-ID`. An event cut short by the end of the
    /// stream does not count, as it was not received.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection delay the server asked for last (milliseconds).
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Whether a line of `line_len` bytes still fits with the event's data;
    /// records the failure when not.
    fn fits(&mut self, line_len: usize) -> bool {
        if line_len.saturating_add(self.data.len()) > self.max {
            self.failed = Some(Error::TooLarge { limit: self.max });
            self.line = Vec::new();
            self.data = String::new();
            return false;
        }
        true
    }

    /// One complete line.
    fn line_end(&mut self, mut line: &[u8]) {
        if !self.fits(line.len()) {
            return;
        }
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch();
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // a comment
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" if !value.contains(&0) => {
                self.event_id = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Digits only, so the text is ASCII; a number too large
                // for u64 is ignored like any invalid value.
                if let Ok(ms) = std::str::from_utf8(value).unwrap_or("").parse() {
                    self.event_retry = Some(ms);
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    /// A blank line: the event read so far is complete.
    fn dispatch(&mut self) {
        let id = self.event_id.take();
        if let Some(id) = &id {
            self.last_event_id.clone_from(id);
        }
        let retry = self.event_retry.take();
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last line
        let event = if self.event.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event)
        };
        self.ready.push_back(Frame {
            id,
            event,
            data,
            retry,
        });
    }
}
