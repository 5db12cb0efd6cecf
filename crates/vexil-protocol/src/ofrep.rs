//! OFREP bodies (the OpenFeature Remote Evaluation Protocol): the request
//! of both evaluation routes, the answer of one flag and of all flags,
//! the error body, the event streams offered to web clients; and the
//! report of one evaluation that `vexil eval` prints.
//!
//! Answers are encoded from borrowed evaluations ([`Entry`],
//! [`BulkAnswer`]) and decoded into owned forms ([`EvaluationAnswer`],
//! [`BulkAnswerOwned`]) for clients and tests. Bodies made only of strings
//! ([`ErrorBody`], [`EventStream`]) are one type for both directions.

use std::borrow::Cow;

use serde::ser::{SerializeSeq as _, SerializeStruct as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vexil_engine::{Context, ContextError, Evaluation, Trace};

use crate::json::{ContextObject, Metadata};

#[cfg(test)]
pub(crate) mod tests;

/// An OFREP request body: `{"context": {...}}`. The context is
/// deserialised straight into the engine's [`Context`] (no intermediate
/// map); other fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvalRequest {
    /// Who is asking; absent or `null` is an empty context.
    #[serde(default)]
    pub context: Context,
}

impl Serialize for EvalRequest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("EvalRequest", 1)?;
        st.serialize_field("context", &ContextObject(&self.context))?;
        st.end()
    }
}

/// Reads the context of an OFREP request body.
///
/// An empty (or all-whitespace) body, `{}` and `{"context": null}` are an
/// empty context. Refusals, for the `errorDetails` of an
/// `INVALID_CONTEXT` answer:
/// - `request body must be a JSON object` when the body does not start
///   with `{`;
/// - `request body is not valid JSON: <parser message>` for malformed
///   JSON (and for a repeated `context` field);
/// - `evaluation context must be a JSON object, found <type>` when the
///   context is not an object.
///
/// The context has no timestamp: the caller, which owns the clock, adds it.
pub fn parse_context(body: &[u8]) -> Result<Context, String> {
    if crate::json::is_blank(body) {
        return Ok(Context::new());
    }
    if !crate::json::is_json_object(body) {
        return Err("request body must be a JSON object".to_owned());
    }
    // The usual body, `{"context": {...}}`, without serde; anything else
    // (other fields, escapes, errors) goes through serde below.
    if let Some(ctx) = Context::from_json_member(body, "context") {
        return Ok(ctx);
    }
    let req: EvalRequest =
        serde_json::from_slice(body).map_err(|e| match ContextError::from(e) {
            ContextError::Syntax(m) => format!("request body is not valid JSON: {m}"),
            shape => shape.to_string(),
        })?;
    Ok(req.context)
}

/// One flag's answer, borrowed from its evaluation for encoding.
///
/// A success is `{"key"?, "value"?, "reason", "variant", "metadata"}`:
/// `variant` is always present (`null` without a value), as the Python
/// provider reads it unconditionally. A failure is
/// `{"key"?, "errorCode", "errorDetails"}`, without value, reason or
/// metadata. `key` is written when given: OFREP names the flag in each
/// answer, the native API keys a map by it instead.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    key: Option<&'a str>,
    evaluation: &'a Evaluation<'a>,
    /// Why (the native API's explain mode): written last, as `trace`.
    trace: Option<&'a Trace>,
}

impl<'a> Entry<'a> {
    /// The answer for `evaluation`, naming `key` when given.
    pub fn new(key: Option<&'a str>, evaluation: &'a Evaluation<'a>) -> Self {
        Entry {
            key,
            evaluation,
            trace: None,
        }
    }

    /// The same answer with the trace of how it was reached.
    pub fn with_trace(self, trace: &'a Trace) -> Self {
        Entry {
            trace: Some(trace),
            ..self
        }
    }
}

impl Serialize for Entry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.evaluation;
        let mut st = s.serialize_struct("Entry", 6)?;
        if let Some(key) = self.key {
            st.serialize_field("key", key)?;
        }
        match &e.error {
            Some(err) => {
                st.serialize_field("errorCode", err.code.as_str())?;
                st.serialize_field("errorDetails", &err.details)?;
            }
            None => {
                if let Some(value) = e.value {
                    st.serialize_field("value", value)?;
                }
                st.serialize_field("reason", e.reason.as_str())?;
                st.serialize_field("variant", &e.variant)?;
                st.serialize_field("metadata", &Metadata(e.metadata()))?;
            }
        }
        if let Some(trace) = self.trace {
            st.serialize_field("trace", trace)?;
        }
        st.end()
    }
}

/// The bulk answer, `{"flags": [entries], "metadata", "eventStreams"?}`,
/// written straight from the evaluations (each entry names its flag).
#[derive(Debug, Clone, Copy)]
pub struct BulkAnswer<'a> {
    /// Every flag's evaluation, in answer order.
    pub evaluations: &'a [Evaluation<'a>],
    /// The answer's metadata; `None` writes `{}`.
    pub metadata: Option<&'a Map<String, Value>>,
    /// Where the client hears about changes; the field is left out when
    /// empty (only client keys are offered one).
    pub event_streams: &'a [EventStream<'a>],
}

impl Serialize for BulkAnswer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("BulkAnswer", 3)?;
        st.serialize_field("flags", &Entries(self.evaluations))?;
        st.serialize_field("metadata", &Metadata(self.metadata))?;
        if !self.event_streams.is_empty() {
            st.serialize_field("eventStreams", self.event_streams)?;
        }
        st.end()
    }
}

/// Evaluations as a list of entries, each naming its flag.
struct Entries<'a>(&'a [Evaluation<'a>]);

impl Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&Entry::new(Some(e.key().unwrap_or("")), e))?;
        }
        seq.end()
    }
}

/// An OFREP error body, `{"key"?, "errorCode", "errorDetails"}`: refusals
/// before any flag is looked at (`GENERAL`, no key) and invalid contexts
/// (`INVALID_CONTEXT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody<'a> {
    /// The flag asked for, on the single-flag route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Cow<'a, str>>,
    /// An OpenFeature error code, e.g. `GENERAL`.
    pub error_code: Cow<'a, str>,
    /// What went wrong, for people.
    pub error_details: Cow<'a, str>,
}

impl<'a> ErrorBody<'a> {
    /// A body borrowing its parts.
    pub fn new(key: Option<&'a str>, error_code: &'a str, error_details: &'a str) -> Self {
        ErrorBody {
            key: key.map(Cow::Borrowed),
            error_code: Cow::Borrowed(error_code),
            error_details: Cow::Borrowed(error_details),
        }
    }
}

/// One flag's answer, decoded: an OFREP success or failure entry, a
/// single-flag answer, an entry of the native answer, or a [`Report`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationAnswer {
    /// The flag (absent in native answers, which key a map by it).
    #[serde(default)]
    pub key: Option<String>,
    /// The value; `None` means "use your code default".
    #[serde(default)]
    pub value: Option<Value>,
    /// The OpenFeature reason (absent in failures). A string, not the
    /// engine's `Reason`: OFREP servers may send reasons of their own.
    #[serde(default)]
    pub reason: Option<String>,
    /// The variant key of the value.
    #[serde(default)]
    pub variant: Option<String>,
    /// The flag's metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The OpenFeature error code of a failure, e.g. `FLAG_NOT_FOUND`.
    #[serde(default)]
    pub error_code: Option<String>,
    /// What went wrong.
    #[serde(default)]
    pub error_details: Option<String>,
    /// How the answer was reached, when it was asked for (the native
    /// API's `explain`): the engine's trace as JSON.
    #[serde(default)]
    pub trace: Option<Value>,
}

impl EvaluationAnswer {
    /// Whether the evaluation failed.
    pub fn is_error(&self) -> bool {
        self.error_code.is_some()
    }
}

/// The bulk answer, decoded (see [`BulkAnswer`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkAnswerOwned {
    /// One answer per flag.
    pub flags: Vec<EvaluationAnswer>,
    /// The answer's metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Where to hear about changes.
    #[serde(default)]
    pub event_streams: Vec<EventStream<'static>>,
}

/// Where web clients hear about changes:
/// `{"type": "sse", "url", "inactivityDelaySec"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStream<'a> {
    /// The stream's kind; this server offers `sse`.
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
    /// The stream's URL (see [`events_url`]).
    pub url: Cow<'a, str>,
    /// How long a client hidden from view may keep the stream open
    /// before closing it (seconds).
    pub inactivity_delay_sec: u64,
}

/// The `inactivityDelaySec` this server offers.
pub const INACTIVITY_DELAY_SEC: u64 = 120;

/// The path of the OFREP event stream.
pub const EVENTS_PATH: &str = "/ofrep/v1/events";

impl<'a> EventStream<'a> {
    /// The server's SSE stream at `url`.
    pub fn sse(url: impl Into<Cow<'a, str>>) -> Self {
        EventStream {
            kind: Cow::Borrowed("sse"),
            url: url.into(),
            inactivity_delay_sec: INACTIVITY_DELAY_SEC,
        }
    }
}

/// The URL of the OFREP event stream for a client key:
/// `<public base>/ofrep/v1/events?key=<percent-encoded key>`, relative
/// without a public base. The key travels in the URL because
/// `EventSource` cannot send headers; only client keys (public by design)
/// may. A trailing `/` of the base is dropped.
pub fn events_url(public_base: Option<&str>, client_key: &str) -> String {
    let base = public_base.unwrap_or("").trim_end_matches('/');
    let mut url = String::with_capacity(base.len() + EVENTS_PATH.len() + 5 + client_key.len());
    url.push_str(base);
    url.push_str(EVENTS_PATH);
    url.push_str("?key=");
    crate::url::percent_encode_into(&mut url, client_key);
    url
}

/// One evaluation as `vexil eval` prints it:
/// `{"key", "value"?, "variant"?, "reason", "errorCode"?, "errorDetails"?,
/// "metadata"}`, absent parts left out.
///
/// This is not [`Entry`], and cannot share its serialiser: a report is
/// the whole evaluation (a failure keeps its reason `ERROR` and its
/// metadata; a success has no `errorCode`), its `variant` is left out when
/// absent where an OFREP success writes `null`, and `variant` comes before
/// `reason`. [`EvaluationAnswer`] decodes both.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    key: &'a str,
    evaluation: &'a Evaluation<'a>,
}

impl<'a> Report<'a> {
    /// The report of `evaluation` of flag `key`.
    pub fn new(key: &'a str, evaluation: &'a Evaluation<'a>) -> Self {
        Report { key, evaluation }
    }
}

impl Serialize for Report<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.evaluation;
        let mut st = s.serialize_struct("Report", 7)?;
        st.serialize_field("key", self.key)?;
        if let Some(value) = e.value {
            st.serialize_field("value", value)?;
        }
        if let Some(variant) = e.variant {
            st.serialize_field("variant", variant)?;
        }
        st.serialize_field("reason", e.reason.as_str())?;
        if let Some(err) = &e.error {
            st.serialize_field("errorCode", err.code.as_str())?;
            st.serialize_field("errorDetails", &err.details)?;
        }
        st.serialize_field("metadata", &Metadata(e.metadata()))?;
        st.end()
    }
}
