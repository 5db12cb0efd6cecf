//! The evaluation context: an OpenFeature context (a targeting key plus
//! arbitrary nested attributes) and pre-split attribute paths into it.

use serde_json::{Map, Value};

/// The attribute name of the targeting key, as OpenFeature spells it.
pub const TARGETING_KEY: &str = "targetingKey";

/// Who is asking: the targeting key and attributes of one evaluation.
///
/// Built once per request and reused for every flag evaluated with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// All attributes, the targeting key included (under `targetingKey`) so
    /// that rules and JsonLogic `var` see it like any attribute.
    attrs: Map<String, Value>,
    /// A copy of the targeting key, for bucketing and individual targets
    /// without a map lookup.
    targeting_key: Option<Box<str>>,
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
    /// `targetingKey` must be a string when present.
    #[error("`targetingKey` must be a string, found {0}")]
    TargetingKeyNotString(&'static str),
    /// The text is not JSON.
    #[error("evaluation context is not valid JSON: {0}")]
    Syntax(String),
}

impl Context {
    /// An empty context: no targeting key, no attributes.
    pub fn new() -> Self {
        Context::default()
    }

    /// Builds a context from a JSON object. `null` gives an empty context,
    /// as OpenFeature clients send no context at all.
    pub fn from_json(value: Value) -> Result<Self, ContextError> {
        let attrs = match value {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(ContextError::NotAnObject(json_type(&other))),
        };
        let targeting_key = match attrs.get(TARGETING_KEY) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str().into()),
            Some(other) => return Err(ContextError::TargetingKeyNotString(json_type(other))),
        };
        Ok(Context {
            attrs,
            targeting_key,
            timestamp: None,
        })
    }

    /// Parses a context from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, ContextError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ContextError::Syntax(e.to_string()))?;
        Context::from_json(value)
    }

    /// Sets the targeting key.
    pub fn with_targeting_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.targeting_key = Some(key.as_str().into());
        self.attrs
            .insert(TARGETING_KEY.to_owned(), Value::String(key));
        self
    }

    /// Sets a top-level attribute. Setting `targetingKey` to a non-string
    /// value removes the targeting key.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        let value = value.into();
        if name == TARGETING_KEY {
            self.targeting_key = value.as_str().map(Into::into);
        }
        self.attrs.insert(name, value);
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
        self.targeting_key.as_deref()
    }

    /// The evaluation time, if the caller stamped one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// All attributes, the targeting key included.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attrs
    }

    /// Looks up a pre-split path.
    #[inline]
    pub fn lookup(&self, path: &Path) -> Option<&Value> {
        let (first, rest) = path.segments.split_first()?;
        let value = self.attrs.get(&*first.key)?;
        descend(value, rest)
    }
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
        Path { segments }
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
