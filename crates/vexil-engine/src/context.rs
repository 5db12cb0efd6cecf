//! The evaluation context: an OpenFeature context (a targeting key plus
//! arbitrary nested attributes) and pre-split attribute paths into it.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use serde_json::{Map, Value};

use crate::compare::str_eq;

/// The attribute name of the targeting key, as OpenFeature spells it.
pub const TARGETING_KEY: &str = "targetingKey";

/// Who is asking: the targeting key and attributes of one evaluation.
///
/// Built once per request and reused for every flag evaluated with it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// All top-level attributes, the targeting key included (under
    /// `targetingKey`) so that rules and JsonLogic `var` see it like any
    /// attribute. Each carries the hash of its name, which compiled paths
    /// carry precomputed: a lookup compares integers, hashing nothing.
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
    hash: u64,
    name: Box<str>,
    value: Value,
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
                hash: name_hash(&name),
                name: name.into(),
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
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let ctx = <Context as serde::Deserialize>::deserialize(&mut de).map_err(context_error)?;
        de.end().map_err(|e| ContextError::Syntax(e.to_string()))?;
        Ok(ctx)
    }

    fn insert(&mut self, name: String, value: Value) {
        let hash = name_hash(&name);
        match self.find(hash, &name) {
            Some(i) => {
                self.attrs[i].value = value;
                self.reindex();
            }
            None => {
                self.attrs.push(Attr {
                    hash,
                    name: name.into(),
                    value,
                });
                self.reindex();
            }
        }
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
                index.insert_unique(a.hash, i as u32, |&j| attrs[j as usize].hash);
            }
            self.index = Some(index);
        }
        self.targeting = self
            .find(name_hash(TARGETING_KEY), TARGETING_KEY)
            .filter(|&i| self.attrs[i].value.is_string())
            .map(|i| i as u32);
    }

    /// The position of attribute `name` with hash `hash`.
    #[inline]
    fn find(&self, hash: u64, name: &str) -> Option<usize> {
        match &self.index {
            None => self
                .attrs
                .iter()
                .position(|a| a.hash == hash && str_eq(&a.name, name)),
            Some(index) => index
                .find(hash, |&i| str_eq(&self.attrs[i as usize].name, name))
                .map(|&i| i as usize),
        }
    }

    /// Sets the targeting key.
    pub fn with_targeting_key(mut self, key: impl Into<String>) -> Self {
        self.insert(TARGETING_KEY.to_owned(), Value::String(key.into()));
        self
    }

    /// Sets a top-level attribute. Setting `targetingKey` to a value that
    /// is not a string removes it, as parsing such a context does.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        let value = value.into();
        if name == TARGETING_KEY && !value.is_string() {
            self.attrs.retain(|a| &*a.name != TARGETING_KEY);
            self.reindex();
            return self;
        }
        self.insert(name, value);
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
        self.find(name_hash(name), name)
            .map(|i| &self.attrs[i].value)
    }

    /// All top-level attributes (the targeting key included), in no
    /// particular order.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.attrs.iter().map(|a| (&*a.name, &a.value))
    }

    /// The attributes as one JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.attrs
                .iter()
                .map(|a| (a.name.to_string(), a.value.clone()))
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
                while let Some(name) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    if name == TARGETING_KEY && !value.is_string() {
                        // Not a string: treated as absent, as flagd does.
                        attrs.retain(|a| &*a.name != TARGETING_KEY);
                        continue;
                    }
                    attrs.push(Attr {
                        hash: name_hash(&name),
                        name: name.into(),
                        value,
                    });
                }
                let mut ctx = Context {
                    attrs: last_of_each(attrs),
                    index: None,
                    targeting: None,
                    timestamp: None,
                };
                ctx.reindex();
                Ok(ctx)
            }
        }

        deserializer.deserialize_any(ContextVisitor)
    }
}

/// Keeps the last occurrence of each name (a JSON object may repeat a key;
/// the last one wins, as in `serde_json::Value`), in linear time.
fn last_of_each(attrs: Vec<Attr>) -> Vec<Attr> {
    // Small contexts (the common case): compare hashes pairwise, allocate
    // nothing when no name repeats.
    if attrs.len() <= SCAN_LIMIT {
        let repeats = attrs
            .iter()
            .enumerate()
            .any(|(i, a)| attrs[i + 1..].iter().any(|b| b.hash == a.hash));
        if !repeats {
            return attrs;
        }
    }
    let mut seen: rustc_hash::FxHashSet<(u64, &str)> = rustc_hash::FxHashSet::default();
    let keep: Vec<bool> = attrs
        .iter()
        .rev()
        .map(|a| seen.insert((a.hash, &a.name)))
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
    /// Hash of the first segment, as the context's table hashes names.
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
