//! The native evaluation API, `POST /api/v1/evaluate`: its request
//! (a context, optionally the flags wanted and a version to wait for), its
//! answer (`{"version", "flags": {key: entry}}`) and its `stale` refusal.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap as _, SerializeStruct as _};
use serde::{Deserialize, Serialize};
use vexil_engine::{Context, ContextError, Evaluation, Trace};

use crate::json::ContextObject;
use crate::ofrep::{Entry, EvaluationAnswer};

#[cfg(test)]
mod tests;

/// The request body. Unknown fields are refused (a misspelt `contxt`
/// would otherwise evaluate an empty context).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NativeRequest {
    /// Who is asking; absent or `null` is an empty context.
    #[serde(default)]
    pub context: Context,
    /// Only these flags, answered under these keys (default: all flags).
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    /// Read-your-writes: the version a caller has just written, which the
    /// answer must have reached.
    #[serde(default, deserialize_with = "integer")]
    pub min_version: Option<i64>,
    /// Explain mode: each answer carries the trace of how it was reached
    /// (which target, rule and clause decided, the rollout bucket). Off
    /// the hot path: it costs a walk that records every step.
    #[serde(default, deserialize_with = "null_is_false")]
    pub explain: bool,
}

/// A boolean whose `null` means absent (false), as every optional field of
/// the request reads `null`.
fn null_is_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

impl Serialize for NativeRequest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("NativeRequest", 3)?;
        st.serialize_field("context", &ContextObject(&self.context))?;
        if let Some(flags) = &self.flags {
            st.serialize_field("flags", flags)?;
        }
        if let Some(v) = self.min_version {
            st.serialize_field("minVersion", &v)?;
        }
        if self.explain {
            st.serialize_field("explain", &true)?;
        }
        st.end()
    }
}

/// A JSON integer, also when written with a zero fraction (`161.0`): JSON
/// has one number type.
fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {n}")))
}

/// Reads a request body. An empty (or all-whitespace) body asks for every
/// flag with an empty context. Refusals, for the `message` of a 400
/// `invalid_request` answer:
/// - `request body must be a JSON object` when the body does not start
///   with `{`;
/// - `invalid request body: <parser message>` for malformed JSON, unknown
///   fields, wrong types, and a `minVersion` that is not an integer;
/// - `evaluation context must be a JSON object, found <type>` when the
///   context is not an object.
///
/// The context has no timestamp: the caller, which owns the clock, adds it.
pub fn parse_native_request(body: &[u8]) -> Result<NativeRequest, String> {
    if crate::json::is_blank(body) {
        return Ok(NativeRequest::default());
    }
    if !crate::json::is_json_object(body) {
        return Err("request body must be a JSON object".to_owned());
    }
    serde_json::from_slice(body).map_err(|e| match ContextError::from(e) {
        ContextError::Syntax(m) => format!("invalid request body: {m}"),
        shape => shape.to_string(),
    })
}

/// The answer, written straight from the evaluations:
/// `{"version", "flags": {key: entry}}`, each entry an OFREP [`Entry`]
/// without its key.
#[derive(Debug, Clone, Copy)]
pub struct NativeAnswer<'a> {
    /// The environment version that answered.
    pub version: i64,
    /// Each evaluation with the key it is answered under: the key asked
    /// for, or (`None`, when evaluating all flags) the flag's own.
    pub flags: &'a [(Option<&'a str>, Evaluation<'a>)],
    /// With explain mode: each evaluation's trace, in the same order.
    pub traces: Option<&'a [Trace]>,
}

impl Serialize for NativeAnswer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("NativeAnswer", 2)?;
        st.serialize_field("version", &self.version)?;
        st.serialize_field("flags", &Flags(self.flags, self.traces))?;
        st.end()
    }
}

/// `{key: entry, …}`.
struct Flags<'a>(&'a [(Option<&'a str>, Evaluation<'a>)], Option<&'a [Trace]>);

impl Serialize for Flags<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (i, (key, e)) in self.0.iter().enumerate() {
            let key = key.or(e.key()).unwrap_or("");
            let entry = Entry::new(None, e);
            match self.1.and_then(|t| t.get(i)) {
                Some(trace) => map.serialize_entry(key, &entry.with_trace(trace))?,
                None => map.serialize_entry(key, &entry)?,
            }
        }
        map.end()
    }
}

/// The answer, decoded (see [`NativeAnswer`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NativeAnswerOwned {
    /// The environment version that answered.
    pub version: i64,
    /// Each flag's answer by key.
    pub flags: BTreeMap<String, EvaluationAnswer>,
}

/// The 503 answer when the server has not reached the `minVersion` asked
/// for: `{"code": "stale", "message", "version"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stale {
    /// Always `stale`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// The version this server has.
    pub version: i64,
}

impl Stale {
    /// The refusal of a server at `version` asked for `min_version`.
    pub fn new(version: i64, min_version: i64) -> Self {
        Stale {
            code: "stale".to_owned(),
            message: format!(
                "this server has version {version} of the environment, not yet {min_version}; retry"
            ),
            version,
        }
    }
}
