//! Evaluation: a pure function of (snapshot, flag key, context).
//!
//! Evaluation cannot fail: problems are reported in the result, with an
//! OpenFeature reason and error code, and the caller falls back to its code
//! default. The common path neither allocates nor locks; results borrow
//! their value and variant from the snapshot.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde_json::Value;

use crate::bucket::{bucket, pick};
use crate::context::Context;
use crate::explain::{Decided, NoTrace, Tracer};
use crate::flagd::logic::{Run, Scope};
use crate::model::Bucketing;
use crate::snapshot::{CompiledFlag, CompiledRollout, CompiledServe, Logic, Snapshot, Targeting};

/// The OpenFeature resolution reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No targeting: everyone gets the default.
    Static,
    /// An individual target or a rule picked the variant.
    TargetingMatch,
    /// A percentage rollout picked the variant.
    Split,
    /// Targeting ran and nothing matched: the default was served.
    Default,
    /// The flag is off.
    Disabled,
    /// Evaluation failed; see the error code.
    Error,
}

impl Reason {
    /// The OpenFeature spelling, e.g. `TARGETING_MATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OpenFeature error code of a failed evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No flag with that key.
    FlagNotFound,
    /// The flag's type is not the one asked for.
    TypeMismatch,
    /// The flag's targeting could not be parsed.
    ParseError,
    /// A rollout needed a targeting key and the context had none.
    TargetingKeyMissing,
    /// The context cannot be used (e.g. the bucket-by attribute has an
    /// unusable type).
    InvalidContext,
    /// Anything else, e.g. targeting named a variant that does not exist.
    General,
}

impl ErrorCode {
    /// The OpenFeature spelling, e.g. `FLAG_NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An evaluation error: a code and a human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, naming the flag, attribute or variant involved.
    pub details: Cow<'static, str>,
}

impl EvalError {
    fn new(code: ErrorCode, details: impl Into<Cow<'static, str>>) -> Self {
        EvalError {
            code,
            details: details.into(),
        }
    }
}

/// What decided the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// Nothing (errors, disabled flags, static flags, flagd targeting).
    Nothing,
    /// The targeting key is listed in the flag's individual targets.
    Target,
    /// Rule number `n` (0-based) matched.
    Rule(usize),
    /// No rule matched; the default serve applied.
    Default,
    /// Prerequisite number `n` (0-based) did not hold.
    PrerequisiteFailed(usize),
}

/// The type the caller expects, as OpenFeature's typed evaluation methods
/// ask for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Any type is accepted.
    Any,
    /// A boolean.
    Bool,
    /// A string.
    String,
    /// An integer (a number without fractional part that fits in i64).
    Int,
    /// Any number.
    Float,
    /// A JSON object or array (a structure value).
    Object,
}

impl ValueType {
    fn accepts(self, v: &Value) -> bool {
        match self {
            ValueType::Any => true,
            ValueType::Bool => v.is_boolean(),
            ValueType::String => v.is_string(),
            ValueType::Int => v.is_i64() || v.is_u64(),
            ValueType::Float => v.is_number(),
            ValueType::Object => v.is_object() || v.is_array(),
        }
    }

    /// The name used in messages and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Any => "any",
            ValueType::Bool => "boolean",
            ValueType::String => "string",
            ValueType::Int => "integer",
            ValueType::Float => "float",
            ValueType::Object => "object",
        }
    }
}

/// The result of evaluating one flag for one context.
#[derive(Debug, Clone)]
pub struct Evaluation<'s> {
    /// The flag, when it exists (for its key and metadata).
    pub flag: Option<&'s CompiledFlag>,
    /// The value. `None` means "use your code default" (errors, disabled
    /// flags without an off variant, flagd flags without a default).
    pub value: Option<&'s Value>,
    /// The variant key of the value.
    pub variant: Option<&'s str>,
    /// Why this value.
    pub reason: Reason,
    /// Set when `reason` is [`Reason::Error`]. Boxed to keep results small
    /// on the common path.
    pub error: Option<Box<EvalError>>,
    /// Which rule, target or prerequisite decided.
    pub matched: Matched,
}

impl Evaluation<'_> {
    /// The flag key, when the flag exists.
    pub fn key(&self) -> Option<&str> {
        self.flag.map(|f| f.key())
    }

    /// The flag's metadata, empty for unknown flags.
    pub fn metadata(&self) -> Option<&serde_json::Map<String, Value>> {
        self.flag.map(|f| f.metadata())
    }
}

/// What resolution decided before values are looked up and typed.
pub(crate) struct Resolved {
    pub(crate) variant: Option<u32>,
    pub(crate) reason: Reason,
    pub(crate) matched: Matched,
    pub(crate) error: Option<Box<EvalError>>,
}

impl Resolved {
    fn ok(variant: Option<u32>, reason: Reason, matched: Matched) -> Self {
        Resolved {
            variant,
            reason,
            matched,
            error: None,
        }
    }

    fn err(error: EvalError) -> Self {
        Resolved {
            variant: None,
            reason: Reason::Error,
            matched: Matched::Nothing,
            error: Some(Box::new(error)),
        }
    }
}

/// Evaluates flag `key` for `ctx`, checking the value against `expected`.
pub fn evaluate<'s>(
    snapshot: &'s Snapshot,
    key: &str,
    ctx: &Context,
    expected: ValueType,
) -> Evaluation<'s> {
    let Some(at) = snapshot.position(key) else {
        return Evaluation {
            flag: None,
            value: None,
            variant: None,
            reason: Reason::Error,
            error: Some(Box::new(EvalError::new(
                ErrorCode::FlagNotFound,
                format!("flag `{key}` not found"),
            ))),
            matched: Matched::Nothing,
        };
    };
    evaluate_index(snapshot, at, ctx, expected, &mut NoTrace)
}

/// Evaluates every flag for `ctx`, in document order.
pub fn evaluate_all<'s>(snapshot: &'s Snapshot, ctx: &Context) -> Vec<Evaluation<'s>> {
    let mut out = Vec::with_capacity(snapshot.flags.len());
    evaluate_all_into(snapshot, ctx, &mut out);
    out
}

/// Like [`evaluate_all`], appending to a caller-owned buffer so it can be
/// reused across requests.
pub fn evaluate_all_into<'s>(snapshot: &'s Snapshot, ctx: &Context, out: &mut Vec<Evaluation<'s>>) {
    out.reserve(snapshot.flags.len());
    for at in 0..snapshot.flags.len() {
        out.push(evaluate_index(
            snapshot,
            at,
            ctx,
            ValueType::Any,
            &mut NoTrace,
        ));
    }
}

/// Evaluates the flag at position `at`: resolution, then the value and
/// its type. The one walk behind both evaluation (`t` is [`NoTrace`]) and
/// explanation (`t` records; see `explain.rs`).
pub(crate) fn evaluate_index<'s, T: Tracer>(
    snapshot: &'s Snapshot,
    at: usize,
    ctx: &Context,
    expected: ValueType,
    t: &mut T,
) -> Evaluation<'s> {
    let flag = &snapshot.flags[at];
    let resolved = resolve(snapshot, flag, ctx, t);
    let mut eval = Evaluation {
        flag: Some(flag),
        value: None,
        variant: None,
        reason: resolved.reason,
        error: resolved.error,
        matched: resolved.matched,
    };
    if let Some(v) = resolved.variant.and_then(|i| flag.variants.get(i as usize)) {
        if !expected.accepts(&v.value) {
            eval.reason = Reason::Error;
            eval.matched = Matched::Nothing;
            eval.error = Some(Box::new(EvalError::new(
                ErrorCode::TypeMismatch,
                format!(
                    "flag `{}` is of type {}, not {}",
                    flag.key,
                    flag.value_type.name(),
                    expected.name()
                ),
            )));
            return eval;
        }
        eval.value = Some(&v.value);
        eval.variant = Some(&v.key);
    }
    eval
}

/// Resolves a flag: off, then prerequisites, then targets, rules and the
/// default (native), or JsonLogic targeting (flagd). `t` is told each
/// decision as it is taken; it cannot change one.
fn resolve<T: Tracer>(
    snapshot: &Snapshot,
    flag: &CompiledFlag,
    ctx: &Context,
    t: &mut T,
) -> Resolved {
    if let Logic::Broken(why) = &flag.logic {
        return Resolved::err(EvalError::new(
            ErrorCode::ParseError,
            format!("flag `{}` is invalid: {why}", flag.key),
        ));
    }
    if !flag.enabled {
        t.decided(flag, Decided::Disabled, flag.off_variant);
        return Resolved::ok(flag.off_variant, Reason::Disabled, Matched::Nothing);
    }
    for (n, &(pre, want)) in flag.prerequisites.iter().enumerate() {
        let holds = snapshot.flags.get(pre as usize).is_some_and(|p| {
            // Prerequisite graphs are acyclic (checked at compile time).
            let mut nested = t.nested(pre as usize);
            let r = resolve(snapshot, p, ctx, &mut nested);
            let holds = p.enabled && r.error.is_none() && r.variant == Some(want);
            t.prerequisite(n, p, want, &r, holds, nested);
            holds
        });
        if !holds {
            t.decided(flag, Decided::Prerequisite, flag.off_variant);
            return Resolved::ok(
                flag.off_variant,
                Reason::Default,
                Matched::PrerequisiteFailed(n),
            );
        }
    }
    match &flag.logic {
        Logic::Native(logic) => {
            if !logic.targets.is_empty() {
                if let Some(key) = ctx.targeting_key()
                    && let Some(&v) = logic.targets.get(key)
                {
                    t.targets(flag, Some(key), Some(v));
                    t.decided(flag, Decided::Target, Some(v));
                    return Resolved::ok(Some(v), Reason::TargetingMatch, Matched::Target);
                }
                t.targets(flag, ctx.targeting_key(), None);
            }
            for (n, rule) in logic.rules.iter().enumerate() {
                t.rule_start(n);
                let hit = rule
                    .clauses
                    .iter()
                    .all(|c| c.matches(ctx, &snapshot.segments, t));
                t.rule_end(rule, n, hit);
                if hit {
                    return serve(
                        snapshot,
                        flag,
                        &rule.serve,
                        ctx,
                        Reason::TargetingMatch,
                        Matched::Rule(n),
                        t,
                    );
                }
            }
            let reason = if logic.is_static {
                Reason::Static
            } else {
                Reason::Default
            };
            match &logic.default {
                Some(default) => serve(snapshot, flag, default, ctx, reason, Matched::Default, t),
                // No value: the caller's code default applies, which
                // OpenFeature (and flagd) call DEFAULT, not STATIC.
                None => {
                    t.decided(flag, Decided::Default, None);
                    Resolved::ok(None, Reason::Default, Matched::Default)
                }
            }
        }
        Logic::Broken(_) => Resolved::err(EvalError::new(
            ErrorCode::ParseError,
            format!("flag `{}` is invalid", flag.key),
        )),
        Logic::Flagd(logic) => match &logic.targeting {
            // A null default variant gives no value: the caller's code
            // default, reason DEFAULT, as flagd answers.
            Targeting::None => {
                t.decided(flag, Decided::Default, logic.default);
                match logic.default {
                    Some(v) => Resolved::ok(Some(v), Reason::Static, Matched::Nothing),
                    None => Resolved::ok(None, Reason::Default, Matched::Nothing),
                }
            }
            Targeting::Broken(why) => Resolved::err(EvalError::new(
                ErrorCode::ParseError,
                format!("targeting of flag `{}` is invalid: {why}", flag.key),
            )),
            Targeting::Expr(expr) => {
                // Only a recording tracer collects fractional picks; for
                // evaluation `picks` is `()` and the sink `None`.
                let picks = T::Picks::default();
                let run = Run {
                    failed: Cell::new(false),
                    fractional: T::sink(&picks),
                };
                let scope = Scope::root(ctx, snapshot.bucketing, &flag.key, &run);
                let out = expr.eval(&scope);
                let failed = run.failed.get();
                t.targeting(&out, failed, &picks);
                if failed {
                    t.decided(flag, Decided::Default, logic.default);
                    return Resolved::ok(logic.default, Reason::Default, Matched::Nothing);
                }
                flagd_variant(flag, logic.default, &out, t)
            }
        },
    }
}

/// Maps the result of flagd targeting to a variant, as flagd does: null
/// means the default; a string, boolean or number names a variant.
fn flagd_variant<T: Tracer>(
    flag: &CompiledFlag,
    default: Option<u32>,
    out: &Value,
    t: &mut T,
) -> Resolved {
    let name: Cow<'_, str> = match out {
        Value::Null => {
            t.decided(flag, Decided::Default, default);
            return Resolved::ok(default, Reason::Default, Matched::Nothing);
        }
        Value::String(s) => Cow::Borrowed(s),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Number(n) => Cow::Owned(n.to_string()),
        other => {
            return Resolved::err(EvalError::new(
                ErrorCode::General,
                format!(
                    "targeting of flag `{}` returned {}, not a variant name",
                    flag.key,
                    crate::context::json_type(other)
                ),
            ));
        }
    };
    match flag.variant_index(&name) {
        Some(v) => {
            t.decided(flag, Decided::Targeting, Some(v));
            Resolved::ok(Some(v), Reason::TargetingMatch, Matched::Nothing)
        }
        None => Resolved::err(EvalError::new(
            ErrorCode::General,
            format!(
                "targeting of flag `{}` returned unknown variant `{name}`",
                flag.key
            ),
        )),
    }
}

fn serve<T: Tracer>(
    snapshot: &Snapshot,
    flag: &CompiledFlag,
    serve: &CompiledServe,
    ctx: &Context,
    fixed_reason: Reason,
    matched: Matched,
    t: &mut T,
) -> Resolved {
    match serve {
        CompiledServe::Variant(v) => {
            t.decided(flag, Decided::by(matched), Some(*v));
            Resolved::ok(Some(*v), fixed_reason, matched)
        }
        CompiledServe::Rollout(r) => match rollout(snapshot.bucketing, &flag.key, r, ctx, t) {
            Ok(v) => {
                t.decided(flag, Decided::by(matched), Some(v));
                Resolved::ok(Some(v), Reason::Split, matched)
            }
            Err(e) => Resolved::err(e),
        },
    }
}

/// Picks a rollout variant: hash (salt or flag key, bucket value), then walk
/// the cumulative weights.
fn rollout<T: Tracer>(
    bucketing: Bucketing,
    flag_key: &str,
    r: &CompiledRollout,
    ctx: &Context,
    t: &mut T,
) -> Result<u32, EvalError> {
    let hash = match &r.bucket_by {
        None => {
            // flagd's CBOR bucketing treats an empty key as missing; so do we.
            let key = ctx
                .targeting_key()
                .filter(|k| !k.is_empty() || bucketing == Bucketing::Concat)
                .ok_or_else(|| {
                    EvalError::new(
                        ErrorCode::TargetingKeyMissing,
                        format!(
                            "flag `{flag_key}` has a percentage rollout and the context has no targeting key"
                        ),
                    )
                })?;
            r.prefix.hash(bucketing, key)
        }
        Some(path) => match ctx.lookup(path) {
            Some(Value::String(s)) => r.prefix.hash(bucketing, s),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => match bucketing {
                Bucketing::Concat => r.prefix.hash(bucketing, &n.to_string()),
                Bucketing::Cbor => r.prefix.hash_cbor_item(&Value::Number(n.clone())),
            },
            other => {
                let found = other.map_or("nothing", crate::context::json_type);
                return Err(EvalError::new(
                    ErrorCode::InvalidContext,
                    format!(
                        "flag `{flag_key}` buckets by an attribute that must be a string or an integer, found {found}"
                    ),
                ));
            }
        },
    };
    let b = bucket(hash, r.total);
    let i = pick(&r.weights, b).unwrap_or(r.weights.len().saturating_sub(1));
    t.bucketed(r, ctx, hash, b, i);
    r.variants
        .get(i)
        .copied()
        .ok_or_else(|| EvalError::new(ErrorCode::General, "rollout has no variants"))
}

impl Snapshot {
    /// Shorthand for [`evaluate`].
    pub fn evaluate(&self, key: &str, ctx: &Context, expected: ValueType) -> Evaluation<'_> {
        evaluate(self, key, ctx, expected)
    }

    /// Shorthand for [`evaluate_all`].
    pub fn evaluate_all(&self, ctx: &Context) -> Vec<Evaluation<'_>> {
        evaluate_all(self, ctx)
    }
}
