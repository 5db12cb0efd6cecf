//! An OpenFeature provider (the `open-feature` crate's `FeatureProvider`)
//! over a [`Client`]: flags evaluated in-process, with OpenFeature's
//! reasons, error codes, variants and flag metadata.
//!
//! ```no_run
//! # async fn run() -> Result<(), vexil_sdk::Error> {
//! use open_feature::OpenFeature;
//! use vexil_sdk::Client;
//! use vexil_sdk::openfeature::VexilProvider;
//!
//! let client = Client::new("http://127.0.0.1:8080", "vxs_server_key")?;
//! let mut api = OpenFeature::singleton_mut().await;
//! api.set_provider(VexilProvider::new(client)).await; // waits until ready (5 s at most)
//! let flags = api.create_client();
//! let on = flags.get_bool_value("new-checkout", None, None).await.unwrap_or(false);
//! # Ok(())
//! # }
//! ```
//!
//! # Mapping
//!
//! - Status: the follower's ([`crate::Status`]): `NotReady`,
//!   `Ready`, `STALE` (serving a version the upstream may have moved past),
//!   `Error` (the upstream refuses the key). The `open-feature` crate only
//!   reads it when asked (`FeatureProvider::status`); keep a clone of the
//!   provider to ask.
//! - Results: a value is `Ok` with its variant, reason (`STATIC`,
//!   `TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED`) and the flag's
//!   metadata. Evaluation errors are `Err` with the same code as Vexil's
//!   (`FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `PARSE_ERROR`,
//!   `TARGETING_KEY_MISSING`, `INVALID_CONTEXT`, `PROVIDER_NOT_READY`
//!   before the first snapshot). A flag that gives no value for the
//!   context (disabled without an off variant, no default serve) is an
//!   `Err` with a `General` code naming the reason: this crate's API has
//!   no code default to hand back, so the caller's `unwrap_or` applies.
//! - Context: the targeting key and custom fields become attributes;
//!   date-times become RFC 3339 strings in UTC; structure fields are read
//!   when they hold a `serde_json::Value`, an `open_feature::Value` or an
//!   `open_feature::StructValue` (others are left out).
//! - Structure flags: JSON objects become `StructValue`s (arrays are a
//!   `TYPE_MISMATCH`, as OpenFeature structures are objects); JSON `null`
//!   members have no OpenFeature value and are left out.

use std::collections::HashMap;
use std::time::Duration;

use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, FlagMetadataValue, StructValue,
};
use serde_json::{Map, Value};
use vexil_engine::{Context, Reason, ValueType};

use crate::client::Client;
use crate::follower::Status;

#[cfg(test)]
mod tests;

/// The OpenFeature provider; clones share the client.
#[derive(Debug, Clone)]
pub struct VexilProvider {
    client: Client,
    metadata: ProviderMetadata,
    init_timeout: Duration,
}

impl VexilProvider {
    /// A provider over `client`; its initialisation waits up to 5 s for
    /// the client to be ready.
    pub fn new(client: Client) -> Self {
        VexilProvider {
            client,
            metadata: ProviderMetadata::new("vexil"),
            init_timeout: Duration::from_secs(5),
        }
    }

    /// How long initialisation (`set_provider`) waits for the client to
    /// be ready; it returns after that anyway, and the status tells.
    pub fn with_init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// The client under the provider.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn resolve<T>(
        &self,
        key: &str,
        ctx: &EvaluationContext,
        expected: ValueType,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let ctx = to_context(ctx);
        self.client.evaluate(key, &ctx, expected, |found| {
            let Some((e, _version)) = found else {
                return Err(error(
                    EvaluationErrorCode::ProviderNotReady,
                    "no flags loaded yet: the first snapshot has not arrived".to_owned(),
                ));
            };
            if let Some(err) = &e.error {
                return Err(error(error_code(err.code), err.details.to_string()));
            }
            let Some(value) = e.value else {
                let why = format!(
                    "flag `{key}` gives no value for this context (reason {}): use the code default",
                    e.reason
                );
                return Err(error(EvaluationErrorCode::General(why.clone()), why));
            };
            let Some(value) = convert(value) else {
                return Err(error(
                    EvaluationErrorCode::TypeMismatch,
                    format!(
                        "the value of flag `{key}` is not an OpenFeature {}",
                        expected.name()
                    ),
                ));
            };
            Ok(ResolutionDetails {
                value,
                variant: e.variant.map(str::to_owned),
                reason: Some(reason(e.reason)),
                flag_metadata: e.metadata().map(metadata),
            })
        })
    }
}

#[open_feature::async_trait]
impl FeatureProvider for VexilProvider {
    async fn initialize(&mut self, _context: &EvaluationContext) {
        if let Err(e) = self.client.wait_ready(self.init_timeout).await {
            tracing::warn!(error = %e, status = %self.client.status(), "vexil provider not ready yet");
        }
    }

    fn status(&self) -> ProviderStatus {
        match self.client.status() {
            Status::NotReady => ProviderStatus::NotReady,
            Status::Ready => ProviderStatus::Ready,
            Status::Stale => ProviderStatus::STALE,
            Status::Error => ProviderStatus::Error,
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(
            flag_key,
            evaluation_context,
            ValueType::Bool,
            Value::as_bool,
        )
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag_key, evaluation_context, ValueType::Int, Value::as_i64)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(
            flag_key,
            evaluation_context,
            ValueType::Float,
            Value::as_f64,
        )
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag_key, evaluation_context, ValueType::String, |v| {
            v.as_str().map(str::to_owned)
        })
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve(flag_key, evaluation_context, ValueType::Object, |v| {
            v.as_object().map(to_struct)
        })
    }
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError {
        code,
        message: Some(message),
    }
}

fn error_code(code: vexil_engine::ErrorCode) -> EvaluationErrorCode {
    match code {
        vexil_engine::ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        vexil_engine::ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
        vexil_engine::ErrorCode::ParseError => EvaluationErrorCode::ParseError,
        vexil_engine::ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
        vexil_engine::ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
        vexil_engine::ErrorCode::General => EvaluationErrorCode::General("GENERAL".to_owned()),
    }
}

fn reason(reason: Reason) -> EvaluationReason {
    match reason {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Default => EvaluationReason::Default,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Error => EvaluationReason::Error,
    }
}

/// A flag's metadata: strings, booleans and numbers (the only values
/// OpenFeature metadata holds, and the only ones Vexil accepts).
fn metadata(map: &Map<String, Value>) -> FlagMetadata {
    let mut out = FlagMetadata::default();
    for (key, value) in map {
        let value = match value {
            Value::Bool(b) => FlagMetadataValue::Bool(*b),
            Value::String(s) => FlagMetadataValue::String(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => FlagMetadataValue::Int(i),
                None => FlagMetadataValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            _ => continue,
        };
        out.add_value(key.clone(), value);
    }
    out
}

/// An OpenFeature context as Vexil's: the targeting key and every field
/// as attributes.
pub(crate) fn to_context(ctx: &EvaluationContext) -> Context {
    // Attribute by attribute: cheaper than a JSON map converted whole.
    let mut out = Context::new();
    for (name, value) in &ctx.custom_fields {
        if let Some(value) = field_json(value) {
            out = out.with(name.as_str(), value);
        }
    }
    if let Some(key) = &ctx.targeting_key {
        out = out.with_targeting_key(key.as_str());
    }
    out
}

fn field_json(value: &EvaluationContextFieldValue) -> Option<Value> {
    Some(match value {
        EvaluationContextFieldValue::Bool(b) => Value::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Value::from(*i),
        EvaluationContextFieldValue::Float(f) => float(*f),
        EvaluationContextFieldValue::String(s) => Value::String(s.clone()),
        EvaluationContextFieldValue::DateTime(t) => Value::String(rfc3339(*t)),
        EvaluationContextFieldValue::Struct(any) => {
            if let Some(v) = any.downcast_ref::<Value>() {
                v.clone()
            } else if let Some(v) = any.downcast_ref::<open_feature::Value>() {
                of_json(v)
            } else if let Some(v) = any.downcast_ref::<StructValue>() {
                struct_json(v)
            } else {
                return None;
            }
        }
    })
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn of_json(value: &open_feature::Value) -> Value {
    match value {
        open_feature::Value::Bool(b) => Value::Bool(*b),
        open_feature::Value::Int(i) => Value::from(*i),
        open_feature::Value::Float(f) => float(*f),
        open_feature::Value::String(s) => Value::String(s.clone()),
        open_feature::Value::Array(items) => Value::Array(items.iter().map(of_json).collect()),
        open_feature::Value::Struct(s) => struct_json(s),
    }
}

fn struct_json(value: &StructValue) -> Value {
    Value::Object(
        value
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), of_json(v)))
            .collect(),
    )
}

fn to_struct(map: &Map<String, Value>) -> StructValue {
    StructValue {
        fields: map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), to_value(v)?)))
            .collect::<HashMap<_, _>>(),
    }
}

/// A JSON value as OpenFeature's; `None` for `null`, which it cannot hold.
fn to_value(value: &Value) -> Option<open_feature::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => open_feature::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => open_feature::Value::Int(i),
            None => open_feature::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => open_feature::Value::String(s.clone()),
        Value::Array(items) => {
            open_feature::Value::Array(items.iter().filter_map(to_value).collect())
        }
        Value::Object(map) => open_feature::Value::Struct(to_struct(map)),
    })
}

/// A date-time as RFC 3339 in UTC (`2024-05-01T12:00:00Z`, with a
/// fraction when there is one).
fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.nanosecond() != 0 {
        let fraction = format!("{:09}", t.nanosecond());
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}
