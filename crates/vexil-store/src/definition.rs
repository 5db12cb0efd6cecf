//! [`Definition`]: a stored definition as immutable, shared JSON text.
//!
//! A definition is written once (serialised from the typed model, or read
//! from the store) and then only passed around: to the store, into the
//! items a server holds, into the change log and the change stream. As
//! text behind an `Arc`, every copy is a reference count, binding it to a
//! statement needs no serialisation, and holding it costs its length
//! instead of a tree of maps.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A flag or segment definition (or a setting's value) as compact JSON
/// text. Cloning shares the text.
///
/// Equality is JSON equality (as [`Value`]'s: maps in any order), not
/// text equality: the same definition may have been written with its
/// fields in another order. Equal texts are equal without parsing.
#[derive(Clone)]
pub struct Definition(Arc<str>);

impl Definition {
    /// The JSON text of `value` (compact).
    pub fn to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::to_string(value).map(|s| Definition(s.into()))
    }

    /// A JSON string (a setting's value).
    pub fn string(s: &str) -> Self {
        Definition::from(Value::from(s))
    }

    /// Takes JSON text, checking that it is JSON; kept as it is.
    pub fn from_text(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str::<&RawValue>(text)?;
        Ok(Definition(text.into()))
    }

    /// Whether both are the very same text (one was cloned from the
    /// other), which says more than equality: nothing was parsed or
    /// written in between.
    pub fn same(&self, other: &Definition) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text into `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.0)
    }

    /// The text as a JSON tree.
    pub fn to_value(&self) -> Value {
        // The text was JSON when it was made.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The text as borrowed raw JSON, to embed without parsing (`None`
    /// cannot happen: the text was JSON when it was made).
    pub fn raw(&self) -> Option<&RawValue> {
        serde_json::from_str::<&RawValue>(&self.0).ok()
    }
}

impl From<&Value> for Definition {
    fn from(value: &Value) -> Self {
        Definition(value.to_string().into())
    }
}

impl From<Value> for Definition {
    fn from(value: Value) -> Self {
        Definition::from(&value)
    }
}

impl PartialEq for Definition {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0 || self.to_value() == other.to_value()
    }
}

impl PartialEq<Value> for Definition {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Debug for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Definition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.raw() {
            Some(raw) => raw.serialize(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for Definition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Definition(Box::<str>::from(raw).into()))
    }
}

#[cfg(test)]
mod tests;
