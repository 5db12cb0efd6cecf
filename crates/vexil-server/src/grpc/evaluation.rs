//! What flagd's evaluation services v1 and v2 share: admitting the call,
//! evaluating with Vexil's engine on the environment's snapshot (every
//! flag: RPC mode has no translation limit), and mapping the outcome to
//! flagd's answers and gRPC status codes.
//!
//! Errors are gRPC statuses, as flagd answers them and its providers read
//! them back: `FLAG_NOT_FOUND` → `NOT_FOUND`, `TYPE_MISMATCH` →
//! `INVALID_ARGUMENT`, `PARSE_ERROR` → `DATA_LOSS`, anything else →
//! `UNKNOWN` (the message starts with the OpenFeature error code).
//!
//! A disabled flag: flagd answers `NOT_FOUND` ("flag disabled") and its
//! providers then return the caller's default. Vexil does the same when
//! the disabled flag has no value to serve; a native flag with an off
//! variant serves it, with reason `DISABLED`, since that is its value.

use prost_types::Struct;
use serde_json::Value;
use tonic::Status;
use tonic::metadata::MetadataMap;
use vexil_engine::{ErrorCode, EvalError, Evaluation, Reason, ValueType};

use super::{Grpc, auth, convert};

/// One flag's answer, before it is put in a v1 or v2 message.
pub(super) struct Answer<T> {
    /// `None` only in ResolveAll's entries that have no value.
    pub(super) value: Option<T>,
    pub(super) variant: Option<String>,
    pub(super) reason: String,
    pub(super) metadata: Option<Struct>,
}

/// A value of any type, for ResolveAll.
pub(super) enum AnyValue {
    Bool(bool),
    String(String),
    Double(f64),
    Object(Struct),
}

/// Evaluates one flag for a `Resolve*` call; `take` reads the value as the
/// call's type (the engine has checked the type already).
pub(super) fn resolve<T>(
    grpc: &Grpc,
    meta: &MetadataMap,
    key: &str,
    context: Option<&Struct>,
    expected: ValueType,
    take: fn(&Value) -> Option<T>,
) -> Result<Answer<T>, Status> {
    let admitted = auth::admit(grpc, meta, "")?;
    let Some(_in_flight) = grpc.plane.limiter.enter() else {
        return Err(overloaded());
    };
    let ctx = convert::context(context, grpc.plane.clock.unix_seconds())?;
    let env = &admitted.env;
    let eval = env.snapshot.evaluate(key, &ctx, expected);
    env.evaluations.add(eval.reason, 1);
    if let Some(e) = &eval.error {
        return Err(status(e));
    }
    let Some(value) = eval.value else {
        return Err(no_value(key, &eval));
    };
    let value = take(value).ok_or_else(|| {
        Status::invalid_argument(format!(
            "TYPE_MISMATCH: flag `{key}` is not of type {}",
            expected.name()
        ))
    })?;
    Ok(answer(&eval, Some(value)))
}

/// Every flag for a context (ResolveAll): flags that give no value or an
/// error are left out, as flagd does.
pub(super) fn resolve_all(
    grpc: &Grpc,
    meta: &MetadataMap,
    context: Option<&Struct>,
) -> Result<Vec<(String, Answer<AnyValue>)>, Status> {
    let admitted = auth::admit(grpc, meta, "")?;
    let Some(_in_flight) = grpc.plane.limiter.enter() else {
        return Err(overloaded());
    };
    let ctx = convert::context(context, grpc.plane.clock.unix_seconds())?;
    let env = &admitted.env;
    let evals = env.snapshot.evaluate_all(&ctx);
    env.evaluations.add_all(&evals);
    let mut out = Vec::with_capacity(evals.len());
    for eval in &evals {
        let (Some(key), Some(value), None) = (eval.key(), eval.value, &eval.error) else {
            continue;
        };
        let value = match value {
            Value::Bool(b) => AnyValue::Bool(*b),
            Value::String(s) => AnyValue::String(s.clone()),
            Value::Number(n) => AnyValue::Double(n.as_f64().unwrap_or(0.0)),
            Value::Object(m) => AnyValue::Object(convert::map_to_struct(m)),
            // Not representable in AnyFlag.
            Value::Array(_) | Value::Null => continue,
        };
        out.push((key.to_owned(), answer(eval, Some(value))));
    }
    Ok(out)
}

fn answer<T>(eval: &Evaluation<'_>, value: Option<T>) -> Answer<T> {
    Answer {
        value,
        variant: eval.variant.map(str::to_owned),
        reason: eval.reason.as_str().to_owned(),
        metadata: eval
            .metadata()
            .filter(|m| !m.is_empty())
            .map(convert::map_to_struct),
    }
}

/// The gRPC status of an evaluation error.
fn status(e: &EvalError) -> Status {
    let message = format!("{}: {}", e.code.as_str(), e.details);
    match e.code {
        ErrorCode::FlagNotFound => Status::not_found(message),
        ErrorCode::TypeMismatch => Status::invalid_argument(message),
        ErrorCode::ParseError => Status::data_loss(message),
        _ => Status::unknown(message),
    }
}

/// An evaluation without error and without a value: a disabled flag
/// without an off variant, or a flag whose targeting gave its (absent)
/// default. The caller's default applies.
fn no_value(key: &str, eval: &Evaluation<'_>) -> Status {
    match eval.reason {
        Reason::Disabled => Status::not_found(format!("FLAG_NOT_FOUND: flag `{key}` is disabled")),
        _ => Status::not_found(format!(
            "FLAG_NOT_FOUND: flag `{key}` has no value for this context (no default variant)"
        )),
    }
}

fn overloaded() -> Status {
    Status::unavailable("the server is at its limit of requests in flight; retry shortly")
}

/// Reads a value as the type of a `Resolve*` call.
pub(super) mod take {
    use super::{Struct, Value, convert};

    pub(in super::super) fn bool(v: &Value) -> Option<bool> {
        v.as_bool()
    }

    pub(in super::super) fn string(v: &Value) -> Option<String> {
        v.as_str().map(str::to_owned)
    }

    pub(in super::super) fn float(v: &Value) -> Option<f64> {
        v.as_f64()
    }

    pub(in super::super) fn int(v: &Value) -> Option<i64> {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
    }

    pub(in super::super) fn object(v: &Value) -> Option<Struct> {
        v.as_object().map(convert::map_to_struct)
    }
}
