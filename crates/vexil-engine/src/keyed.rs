//! An ordered, string-keyed map for documents.
//!
//! Documents are maps keyed by flag, segment and variant keys. Order matters
//! (rollout weights are walked in document order, and exports should round-trip
//! without reshuffling), and a key written twice is a mistake we must report
//! instead of silently keeping the last one, as `serde_json::Map` would.
//!
//! Values are shared (`Arc`): cloning a map copies its keys and pointers,
//! not the definitions, so a new version of a document can be built from
//! the previous one at the cost of what changed, and the compiler can tell
//! an unchanged definition by its address.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map that keeps insertion order and refuses duplicate keys when parsed.
#[derive(Debug, PartialEq)]
pub struct Keyed<T>(Vec<(String, Arc<T>)>);

impl<T> Clone for Keyed<T> {
    fn clone(&self) -> Self {
        Keyed(self.0.clone())
    }
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed(Vec::new())
    }
}

impl<T> Keyed<T> {
    /// Builds a map from pairs. Duplicate keys are kept as given; validation
    /// reports them.
    pub fn from_pairs(pairs: Vec<(String, T)>) -> Self {
        Keyed(pairs.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }

    /// Builds a map from pairs whose values are shared with other maps.
    pub fn from_shared(pairs: Vec<(String, Arc<T>)>) -> Self {
        Keyed(pairs)
    }

    /// The entries, values shared.
    pub fn shared(&self) -> &[(String, Arc<T>)] {
        &self.0
    }

    /// The entries as pairs of shared values.
    pub fn into_shared(self) -> Vec<(String, Arc<T>)> {
        self.0
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in document order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &T)> {
        self.0.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// Keys in document order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Looks up a key. Linear: meant for small maps and for tooling, not for
    /// the evaluation hot path (compiled snapshots use hash maps).
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// Position of a key in document order.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == key)
    }

    /// Inserts or replaces a value, keeping the position of an existing key.
    pub fn insert(&mut self, key: String, value: T) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = Arc::new(value),
            None => self.0.push((key, Arc::new(value))),
        }
    }
}

impl<T: Clone> Keyed<T> {
    /// Mutable access to a value (copied first when it is shared).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        self.0
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| Arc::make_mut(v))
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<T> {
        let at = self.position(key)?;
        Some(Arc::unwrap_or_clone(self.0.remove(at).1))
    }

    /// The entries as a vector of pairs.
    pub fn into_pairs(self) -> Vec<(String, T)> {
        self.0
            .into_iter()
            .map(|(k, v)| (k, Arc::unwrap_or_clone(v)))
            .collect()
    }
}

impl<T: Serialize> Serialize for Keyed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, &**v)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Keyed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for KeyedVisitor<T> {
            type Value = Keyed<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(String, Arc<T>)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0));
                let mut seen: FxHashSet<String> = FxHashSet::default();
                // YAML keys may be booleans or numbers (`true: …` in a
                // flagd file's variants); they name variants as text.
                while let Some(KeyText(key)) = access.next_key::<KeyText>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                    let value = access.next_value()?;
                    pairs.push((key, Arc::new(value)));
                }
                Ok(Keyed(pairs))
            }
        }

        deserializer.deserialize_map(KeyedVisitor(PhantomData))
    }
}

/// A map key as text, whatever scalar it is (YAML keys may be booleans or
/// numbers).
pub(crate) struct KeyText(pub(crate) String);

impl<'de> serde::Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyText, E> {
                Ok(KeyText(s.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<KeyText, E> {
                Ok(KeyText(b.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<KeyText, E> {
                Ok(KeyText(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<KeyText, E> {
                Ok(KeyText(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<KeyText, E> {
                Ok(KeyText(n.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}
