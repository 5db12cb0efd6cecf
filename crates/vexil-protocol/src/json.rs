//! Writing JSON into a `Vec<u8>` without a `Result` to handle, and the
//! small serialisers the bodies share (a context as an object, an empty
//! object).
//!
//! Serialising this crate's types cannot fail: they hold no maps with
//! non-string keys and no `Serialize` impl that errs, and writing into a
//! `Vec` does no I/O. So the encoders return plain bytes.

use serde::Serialize;
use serde::ser::SerializeMap as _;
use vexil_engine::Context;

#[cfg(test)]
mod tests;

/// Appends `value` as compact JSON to `out`.
///
/// Should serialisation fail after all (a type outside this crate whose
/// `Serialize` errs), what it wrote is taken back and `null` written
/// instead, so that `out` always holds well-formed JSON.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

/// `value` as compact JSON (see [`write()`]).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write(&mut out, value);
    out
}

/// Whether a body's first non-whitespace byte opens an object: request
/// bodies are refused as "not a JSON object" on that test alone, before
/// parsing.
pub(crate) fn is_json_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Whether a request body counts as absent: empty or only whitespace.
pub(crate) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// A context's attributes as one JSON object (the targeting key included,
/// in no particular order); the timestamp is not part of it.
pub(crate) struct ContextObject<'a>(pub(crate) &'a Context);

impl Serialize for ContextObject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.0.attributes() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `{}`, or the metadata map when there is one: unknown flags have none.
pub(crate) struct Metadata<'a>(pub(crate) Option<&'a serde_json::Map<String, serde_json::Value>>);

impl Serialize for Metadata<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(map) => map.serialize(s),
            None => s.serialize_map(Some(0))?.end(),
        }
    }
}
