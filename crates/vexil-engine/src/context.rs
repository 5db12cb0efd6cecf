//! The evaluation context: an OpenFeature context (a targeting key plus
//! arbitrary nested attributes) and pre-split attribute paths into it.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use serde_json::{Map, Value};

use crate::compare::bytes_eq;

/// The attribute name of the targeting key, as OpenFeature spells it.
pub const TARGETING_KEY: &str = "targetingKey";

/// Who is asking: the targeting key and attributes of one evaluation.
///
/// Built once per request and reused for every flag evaluated with it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// All top-level attributes, the targeting key included (under
    /// `targetingKey`) so that rules and JsonLogic `var` see it like any
    /// attribute. Each name carries its hash, which compiled paths carry
    /// precomputed: a lookup compares integers, hashing nothing.
    attrs: Vec<Attr>,
    /// Positions by name hash, only for contexts too large to scan.
    index: Option<HashTable<u32>>,
    /// Where in `attrs` the targeting key is (when it is a string), for
    /// bucketing and individual targets without a lookup or a copy.
    targeting: Option<u32>,
    /// Seconds since the Unix epoch, for `$flagd.timestamp`. The engine
    /// reads no clock; callers stamp contexts.
    timestamp: Option<i64>,
}

/// Why a JSON value is not a usable context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The context must be a JSON object.
    #[error("evaluation context must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// The text is not JSON.
    #[error("evaluation context is not valid JSON: {0}")]
    Syntax(String),
}

/// Contexts with more attributes than this get a hash index.
const SCAN_LIMIT: usize = 16;

#[derive(Debug, Clone)]
struct Attr {
    name: Name,
    value: Value,
}

/// How many bytes of a [`Name`] are kept inline.
const HEAD: usize = 16;

/// An attribute name: its hash, its length and first 16 bytes inline, and
/// the whole name on the heap only when it is longer. Short names, nearly
/// all attribute names, then cost no allocation when a context is parsed
/// (five names were five of a small context's eleven allocations).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The hash of the whole name, which compiled paths carry
    /// precomputed: a scan compares integers before bytes.
    hash: u64,
    head: Head,
    /// The whole name, only when it is longer than `HEAD` bytes.
    long: Option<Box<str>>,
}

/// The length and first `HEAD` bytes (zero-padded) of a string: for a
/// short string, all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    len: usize,
    bytes: [u8; HEAD],
}

impl Head {
    /// Built in a register from two overlapping loads rather than by a
    /// variable-length copy to the stack, which the wide loads of a
    /// comparison right after cannot forward from (a stall that showed in
    /// profiles).
    #[inline]
    pub(crate) fn of(s: &str) -> Head {
        let s = s.as_bytes();
        let n = s.len();
        // Byte i of the string at bits 8i..8i+8; overlapping bytes are
        // the same in both loads.
        let word: u128 = if n >= HEAD {
            let mut w = [0u8; HEAD];
            w.copy_from_slice(&s[..HEAD]);
            u128::from_le_bytes(w)
        } else if n >= 8 {
            u128::from(load8(s, 0)) | (u128::from(load8(s, n - 8)) << (8 * (n - 8)))
        } else if n >= 4 {
            u128::from(load4(s, 0)) | (u128::from(load4(s, n - 4)) << (8 * (n - 4)))
        } else if n > 0 {
            u128::from(s[0])
                | (u128::from(s[n / 2]) << (8 * (n / 2)))
                | (u128::from(s[n - 1]) << (8 * (n - 1)))
        } else {
            0
        };
        Head {
            len: n,
            bytes: word.to_le_bytes(),
        }
    }
}

#[inline(always)]
fn load8(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn load4(s: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_le_bytes(w)
}

impl Name {
    pub(crate) fn new(name: &str) -> Name {
        Name {
            hash: name_hash(name),
            head: Head::of(name),
            long: (name.len() > HEAD).then(|| name.into()),
        }
    }

    /// Whether both are the same name.
    #[inline(always)]
    pub(crate) fn same(&self, other: &Name) -> bool {
        self.hash == other.hash
            && self.head == other.head
            && (self.head.len <= HEAD || self.long == other.long)
    }

    /// Whether this is `s` (whose hash the caller has compared).
    #[inline(always)]
    fn is_str(&self, s: &str) -> bool {
        self.head.len == s.len()
            && match &self.long {
                Some(long) => **long == *s,
                None => bytes_eq(&self.head.bytes[..s.len()], s.as_bytes()),
            }
    }

    fn is_targeting_key(&self) -> bool {
        self.head.len == TARGETING_KEY.len()
            && self.head.bytes[..TARGETING_KEY.len()] == *TARGETING_KEY.as_bytes()
    }

    pub(crate) fn as_str(&self) -> &str {
        match &self.long {
            Some(long) => long,
            // Built from a `&str` of at most `HEAD` bytes: always valid.
            None => std::str::from_utf8(&self.head.bytes[..self.head.len]).unwrap_or_default(),
        }
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The hash of a top-level attribute name.
#[inline]
fn name_hash(name: &str) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl Context {
    /// An empty context: no targeting key, no attributes.
    pub fn new() -> Self {
        Context::default()
    }

    /// Builds a context from a JSON object. `null` gives an empty context,
    /// as OpenFeature clients send no context at all.
    pub fn from_json(value: Value) -> Result<Self, ContextError> {
        let map = match value {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(ContextError::NotAnObject(json_type(&other))),
        };
        let mut map = map;
        // A targeting key that is not a string is treated as absent, as
        // flagd does: targeting runs without one.
        if map.get(TARGETING_KEY).is_some_and(|v| !v.is_string()) {
            map.remove(TARGETING_KEY);
        }
        // Keys of a JSON object are already unique.
        let attrs = map
            .into_iter()
            .map(|(name, value)| Attr {
                name: Name::new(&name),
                value,
            })
            .collect();
        let mut ctx = Context {
            attrs,
            index: None,
            targeting: None,
            timestamp: None,
        };
        ctx.reindex();
        Ok(ctx)
    }

    /// Parses a context from JSON text. Top-level attributes go straight
    /// into the context (no intermediate map), which is what request
    /// handlers want.
    pub fn from_json_str(text: &str) -> Result<Self, ContextError> {
        Context::from_json_slice(text.as_bytes())
    }

    /// Parses a context from JSON bytes; see [`Context::from_json_str`].
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, ContextError> {
        if let Some(ctx) = fast::context(bytes) {
            return Ok(ctx);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let ctx = <Context as serde::Deserialize>::deserialize(&mut de).map_err(context_error)?;
        de.end().map_err(|e| ContextError::Syntax(e.to_string()))?;
        Ok(ctx)
    }

    /// The context in a request body that is exactly
    /// `{"<member>": <object or null>}` (or `{}`), read by a fast path
    /// that allocates only string values.
    ///
    /// Returns `None` for every other body, valid or not, and for the
    /// rarer forms of JSON the fast path leaves out (escapes in names or
    /// strings, numbers serde_json does not read as an integer or float).
    /// The caller then deserialises the body in full (the context with
    /// `Context`'s `Deserialize`), which reads the same bodies into the
    /// same contexts and words every error.
    pub fn from_json_member(body: &[u8], member: &str) -> Option<Context> {
        fast::member(body, member)
    }

    /// A context of `attrs`, gathered with [`push_attr`].
    fn from_attrs(attrs: Vec<Attr>) -> Context {
        let mut ctx = Context {
            attrs: last_of_each(attrs),
            index: None,
            targeting: None,
            timestamp: None,
        };
        ctx.reindex();
        ctx
    }

    fn insert(&mut self, name: &str, value: Value) {
        match self.find_str(name) {
            Some(i) => self.attrs[i].value = value,
            None => self.attrs.push(Attr {
                name: Name::new(name),
                value,
            }),
        }
        self.reindex();
    }

    /// Rebuilds what is derived from `attrs`: the index (for large
    /// contexts) and the position of the targeting key.
    fn reindex(&mut self) {
        if self.attrs.len() <= SCAN_LIMIT {
            self.index = None;
        } else {
            let attrs = &self.attrs;
            let mut index = HashTable::with_capacity(attrs.len());
            for (i, a) in attrs.iter().enumerate() {
                index.insert_unique(a.name.hash, i as u32, |&j| attrs[j as usize].name.hash);
            }
            self.index = Some(index);
        }
        self.targeting = self
            .find_str(TARGETING_KEY)
            .filter(|&i| self.attrs[i].value.is_string())
            .map(|i| i as u32);
    }

    /// The position of attribute `name`, whose hash is `hash`.
    #[inline]
    fn find(&self, hash: u64, name: &str) -> Option<usize> {
        match &self.index {
            None => self
                .attrs
                .iter()
                .position(|a| a.name.hash == hash && a.name.is_str(name)),
            Some(index) => index
                .find(hash, |&i| self.attrs[i as usize].name.is_str(name))
                .map(|&i| i as usize),
        }
    }

    /// The position of attribute `name`.
    fn find_str(&self, name: &str) -> Option<usize> {
        self.find(name_hash(name), name)
    }

    /// Sets the targeting key.
    pub fn with_targeting_key(mut self, key: impl Into<String>) -> Self {
        self.insert(TARGETING_KEY, Value::String(key.into()));
        self
    }

    /// Sets a top-level attribute. Setting `targetingKey` to a value that
    /// is not a string removes it, as parsing such a context does.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        let value = value.into();
        if name == TARGETING_KEY && !value.is_string() {
            self.attrs.retain(|a| !a.name.is_targeting_key());
            self.reindex();
            return self;
        }
        self.insert(&name, value);
        self
    }

    /// Sets the evaluation time (seconds since the Unix epoch).
    pub fn with_timestamp(mut self, seconds: i64) -> Self {
        self.timestamp = Some(seconds);
        self
    }

    /// The targeting key, if any.
    #[inline]
    pub fn targeting_key(&self) -> Option<&str> {
        let i = self.targeting? as usize;
        self.attrs.get(i).and_then(|a| a.value.as_str())
    }

    /// The evaluation time, if the caller stamped one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// A top-level attribute by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.find_str(name).map(|i| &self.attrs[i].value)
    }

    /// All top-level attributes (the targeting key included), in no
    /// particular order.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.attrs.iter().map(|a| (a.name.as_str(), &a.value))
    }

    /// The attributes as one JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.attrs
                .iter()
                .map(|a| (a.name.as_str().to_owned(), a.value.clone()))
                .collect(),
        )
    }

    /// Looks up a pre-split path.
    #[inline]
    pub fn lookup(&self, path: &Path) -> Option<&Value> {
        let (first, rest) = path.segments.split_first()?;
        let at = self.find(path.first_hash, &first.key)?;
        descend(&self.attrs[at].value, rest)
    }
}

impl From<serde_json::Error> for ContextError {
    /// For callers that deserialize a [`Context`] inside a larger document
    /// (e.g. `{"context": {...}}`): shape problems keep their meaning.
    fn from(e: serde_json::Error) -> Self {
        context_error(e)
    }
}

/// Turns a deserialisation error into the matching [`ContextError`]: the
/// visitor reports shape problems with a marker prefix.
fn context_error(e: serde_json::Error) -> ContextError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix(NOT_OBJECT) {
        return ContextError::NotAnObject(type_name(rest));
    }
    ContextError::Syntax(msg)
}

const NOT_OBJECT: &str = "vexil-context-not-object:";

fn type_name(rest: &str) -> &'static str {
    let t = rest.split_whitespace().next().unwrap_or("");
    ["null", "boolean", "number", "string", "array", "object"]
        .into_iter()
        .find(|n| *n == t)
        .unwrap_or("value")
}

impl<'de> serde::Deserialize<'de> for Context {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};

        struct ContextVisitor;

        fn reject<E: de::Error>(kind: &str) -> E {
            E::custom(format_args!("{NOT_OBJECT}{kind}"))
        }

        impl<'de> Visitor<'de> for ContextVisitor {
            type Value = Context;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an evaluation context (a JSON object)")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Context, E> {
                Ok(Context::new())
            }

            fn visit_none<E: de::Error>(self) -> Result<Context, E> {
                Ok(Context::new())
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Context, E> {
                Err(reject("boolean"))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Context, E> {
                Err(reject("number"))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Context, E> {
                Err(reject("number"))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Context, E> {
                Err(reject("number"))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Context, E> {
                Err(reject("string"))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Context, A::Error> {
                Err(reject("array"))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
                let mut attrs: Vec<Attr> = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some(name) = map.next_key::<Name>()? {
                    let value: Value = map.next_value()?;
                    push_attr(&mut attrs, name, value);
                }
                Ok(Context::from_attrs(attrs))
            }
        }

        deserializer.deserialize_any(ContextVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    /// Reads a name without allocating when it is short.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = Name;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an attribute name")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(Name::new(v))
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

/// Adds an attribute read from JSON, in the order read.
fn push_attr(attrs: &mut Vec<Attr>, name: Name, value: Value) {
    if name.is_targeting_key() && !value.is_string() {
        // Not a string: treated as absent, as flagd does.
        attrs.retain(|a| !a.name.is_targeting_key());
        return;
    }
    attrs.push(Attr { name, value });
}

/// Keeps the last occurrence of each name (a JSON object may repeat a key;
/// the last one wins, as in `serde_json::Value`), in linear time.
fn last_of_each(attrs: Vec<Attr>) -> Vec<Attr> {
    // Small contexts (the common case): compare names pairwise, allocate
    // nothing when no name repeats.
    if attrs.len() <= SCAN_LIMIT {
        let repeats = attrs
            .iter()
            .enumerate()
            .any(|(i, a)| attrs[i + 1..].iter().any(|b| b.name.same(&a.name)));
        if !repeats {
            return attrs;
        }
    }
    let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    let keep: Vec<bool> = attrs
        .iter()
        .rev()
        .map(|a| seen.insert(a.name.as_str()))
        .collect();
    if keep.iter().all(|k| *k) {
        return attrs;
    }
    attrs
        .into_iter()
        .zip(keep.into_iter().rev())
        .filter_map(|(a, k)| k.then_some(a))
        .collect()
}

/// Follows path segments into nested objects (by key) and arrays (by index).
#[inline]
pub(crate) fn descend<'v>(mut value: &'v Value, segments: &[Segment]) -> Option<&'v Value> {
    for seg in segments {
        value = match value {
            Value::Object(map) => map.get(&*seg.key)?,
            Value::Array(items) => items.get(seg.index?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// A dotted attribute path (`user.address.country`), split once at
/// compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub(crate) segments: Box<[Segment]>,
    /// Hash of the first segment, as contexts hash names.
    first_hash: u64,
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) key: Box<str>,
    /// The key read as an array index, when it is one.
    pub(crate) index: Option<usize>,
}

impl Path {
    /// Splits a dotted path. Empty segments are kept (and match nothing);
    /// validation refuses them in native documents.
    pub fn parse(dotted: &str) -> Path {
        let segments = dotted
            .split('.')
            .map(|s| Segment {
                key: s.into(),
                index: s.parse().ok(),
            })
            .collect();
        let first_hash = name_hash(dotted.split('.').next().unwrap_or(""));
        Path {
            segments,
            first_hash,
        }
    }

    /// Whether this is exactly the targeting key.
    pub fn is_targeting_key(&self) -> bool {
        self.segments.len() == 1 && &*self.segments[0].key == TARGETING_KEY
    }
}

/// The JSON type name of a value, for messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

mod fast;
#[cfg(test)]
mod tests;
