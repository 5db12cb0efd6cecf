//! The fast path of reading a context from JSON text: objects whose
//! names have no escapes, with strings without escapes, `true`, `false`,
//! `null` and numbers as values, and nested values handed to serde_json.
//! Names (see `Name`) and strings are taken straight from the text; only
//! string values allocate, and no intermediate `Value` map is built.
//!
//! It reports no errors: on anything else, valid or not, it gives up
//! (`None`) and the caller parses with serde_json, which reads the same
//! text into the same context and words the error. So what it accepts
//! must be exactly what serde_json accepts, with the same result; the
//! tests compare both on every form.

use serde_json::{Number, Value};

use super::{Attr, Context, Name, push_attr};

/// How deeply serde_json lets values nest (arrays and objects, the
/// outermost counted): its recursion limit. A value handed to it alone
/// gets the whole limit, so the levels above it are counted here.
pub(super) const MAX_NESTING: usize = 127;

/// A context object and nothing else around it (but whitespace).
pub(super) fn context(bytes: &[u8]) -> Option<Context> {
    let mut c = Cursor::new(bytes)?;
    c.ws();
    c.eat(b'{')?;
    let attrs = c.object(MAX_NESTING - 1)?;
    c.end()?;
    Some(Context::from_attrs(attrs))
}

/// `{}` or `{"<member>": <context object or null>}`.
pub(super) fn member(bytes: &[u8], member: &str) -> Option<Context> {
    let mut c = Cursor::new(bytes)?;
    c.ws();
    c.eat(b'{')?;
    c.ws();
    if c.eat(b'}').is_some() {
        c.end()?;
        return Some(Context::new());
    }
    c.eat(b'"')?;
    if c.plain_string()? != member {
        return None;
    }
    c.ws();
    c.eat(b':')?;
    c.ws();
    let ctx = if c.literal("null").is_some() {
        Context::new()
    } else {
        c.eat(b'{')?;
        Context::from_attrs(c.object(MAX_NESTING - 2)?)
    };
    c.ws();
    c.eat(b'}')?;
    c.end()?;
    Some(ctx)
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// JSON text is UTF-8 (serde_json refuses anything else), so checking
    /// it once up front lets every string be sliced from it.
    fn new(bytes: &'a [u8]) -> Option<Self> {
        Some(Cursor {
            text: std::str::from_utf8(bytes).ok()?,
            at: 0,
        })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    #[inline]
    fn eat(&mut self, b: u8) -> Option<()> {
        if self.peek() == Some(b) {
            self.at += 1;
            Some(())
        } else {
            None
        }
    }

    /// Only whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.ws();
        (self.at == self.text.len()).then_some(())
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        if self.text.get(self.at..)?.starts_with(word) {
            self.at += word.len();
            Some(())
        } else {
            None
        }
    }

    /// The rest of a string after its opening quote, when it has no
    /// escapes (and no control characters, which JSON refuses).
    #[inline]
    fn plain_string(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let len = bytes
            .get(start..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// The members of an object after its `{`, up to and with its `}`.
    /// `nesting` is how deeply the members' values may still nest.
    fn object(&mut self, nesting: usize) -> Option<Vec<Attr>> {
        let mut attrs = Vec::with_capacity(8);
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(attrs);
        }
        loop {
            self.ws();
            self.eat(b'"')?;
            let name = Name::new(self.plain_string()?);
            self.ws();
            self.eat(b':')?;
            self.ws();
            let value = self.value(nesting)?;
            push_attr(&mut attrs, name, value);
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(attrs);
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self, nesting: usize) -> Option<Value> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                Some(Value::String(self.plain_string()?.to_owned()))
            }
            b't' => self.literal("true").map(|()| Value::Bool(true)),
            b'f' => self.literal("false").map(|()| Value::Bool(false)),
            b'n' => self.literal("null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            b'{' | b'[' => self.nested(nesting),
            _ => None,
        }
    }

    /// A number as JSON writes them, read by serde_json's own number
    /// parser (so that `-0`, large integers and floats come out alike).
    fn number(&mut self) -> Option<Value> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        if bytes.get(i) == Some(&b'0') {
            i += 1;
        } else if !digits(&mut i) {
            return None;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        let n: Number = self.text.get(start..i)?.parse().ok()?;
        self.at = i;
        Some(Value::Number(n))
    }

    /// An array or object, read by serde_json; given up on when it nests
    /// deeper than `nesting`, where serde_json would have refused it in
    /// place.
    fn nested(&mut self, nesting: usize) -> Option<Value> {
        let rest = self.text.get(self.at..)?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        let value = values.next()?.ok()?;
        if depth(&value) > nesting {
            return None;
        }
        self.at += values.byte_offset();
        Some(value)
    }
}

/// How deeply arrays and objects nest in `value` (0 for a scalar).
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
