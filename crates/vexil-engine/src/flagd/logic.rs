//! JsonLogic, compiled once into an expression tree and evaluated without
//! re-reading JSON, with flagd's custom operators (`fractional`, `sem_ver`,
//! `starts_with`, `ends_with`).
//!
//! Semantics follow flagd: truthiness is false for `false`, `null`, `0`,
//! and empty strings, arrays and objects. A custom operator given bad
//! arguments makes the whole targeting yield `null`, so the flag's default
//! variant is served (as flagd's test suite expects), never an error.

use std::borrow::Cow;
use std::cell::Cell;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::bucket::{Prefix, bucket, hash_cbor, murmur3_32, pick};
use crate::compare::{cmp_semver, json_eq, parse_semver};
use crate::context::{Context, Path, TARGETING_KEY, descend};
use crate::explain::RolloutTrace;
use crate::model::Bucketing;
use crate::rules::ValueSet;

/// A compiled JsonLogic expression.
#[derive(Debug)]
pub(crate) enum Expr {
    Lit(Value),
    /// An array with at least one non-literal element.
    Array(Box<[Expr]>),
    Var(Path, Option<Box<Expr>>),
    /// `var` whose path is computed.
    VarDyn(Box<Expr>, Option<Box<Expr>>),
    /// `var` of the whole data.
    Data,
    /// `$flagd.timestamp`.
    Timestamp,
    /// `$flagd` as an object.
    FlagdObject(Box<str>),
    Missing(Box<[Expr]>),
    MissingSome(Box<Expr>, Box<Expr>),
    If(Box<[Expr]>),
    And(Box<[Expr]>),
    Or(Box<[Expr]>),
    Not(Box<Expr>),
    Truthy(Box<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    StrictEq(Box<Expr>, Box<Expr>),
    Ne(Box<Expr>, Box<Expr>),
    StrictNe(Box<Expr>, Box<Expr>),
    /// `<`, `<=`, `>`, `>=` with two operands, or three for "between".
    Cmp(Ordering, bool, Box<[Expr]>),
    Arith(Arith, Box<[Expr]>),
    In(Box<Expr>, Box<Expr>),
    /// `in` with a literal array: a prepared set.
    InList(Box<Expr>, ValueSet),
    Cat(Box<[Expr]>),
    Substr(Box<[Expr]>),
    Merge(Box<[Expr]>),
    Map(Box<Expr>, Box<Expr>),
    Filter(Box<Expr>, Box<Expr>),
    Reduce(Box<Expr>, Box<Expr>, Box<Expr>),
    All(Box<Expr>, Box<Expr>),
    None(Box<Expr>, Box<Expr>),
    Some(Box<Expr>, Box<Expr>),
    Fractional(Fractional),
    SemVer(Box<[Expr]>),
    StartsWith(Box<[Expr]>),
    EndsWith(Box<[Expr]>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Min,
    Max,
}

/// A `fractional` call. When every bucket is a literal (the usual case)
/// weights are summed once at compile time.
#[derive(Debug)]
pub(crate) struct Fractional {
    /// All arguments, compiled; the first may be the bucketing value.
    args: Box<[Expr]>,
    /// Hash state after the flag key, for the default bucketing value.
    flag_prefix: Prefix,
    /// Buckets known at compile time (all arguments literal arrays).
    fixed: Option<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    names: Vec<Value>,
    weights: Vec<u64>,
    total: u64,
}

/// What one run of a flag's targeting reports besides its value.
///
/// It owns nothing that needs dropping, so evaluation pays nothing for
/// the explain-mode field.
#[derive(Default)]
pub(crate) struct Run<'a> {
    /// Set when a custom operator met bad arguments: the targeting result
    /// is then void.
    pub(crate) failed: Cell<bool>,
    /// Explain mode only (`None` when evaluating, so nothing is collected
    /// or allocated): where each bucket a `fractional` picks goes.
    pub(crate) fractional: Option<&'a Cell<Vec<RolloutTrace>>>,
}

/// Where `var` looks, and what a `fractional` needs to hash.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    data: Data<'a>,
    ctx: &'a Context,
    bucketing: Bucketing,
    flag_key: &'a str,
    run: &'a Run<'a>,
}

#[derive(Clone, Copy)]
enum Data<'a> {
    /// The evaluation context (plus `$flagd`).
    Root,
    /// The current item inside `map`, `filter`, `reduce`, `all`, ….
    Item(&'a Value),
}

impl<'a> Scope<'a> {
    pub(crate) fn root(
        ctx: &'a Context,
        bucketing: Bucketing,
        flag_key: &'a str,
        run: &'a Run<'a>,
    ) -> Self {
        Scope {
            data: Data::Root,
            ctx,
            bucketing,
            flag_key,
            run,
        }
    }

    /// Marks the evaluation as failed and yields `null`.
    fn fail<'b>(&self) -> Cow<'b, Value> {
        self.run.failed.set(true);
        Cow::Owned(Value::Null)
    }

    fn item<'b>(&self, data: &'b Value) -> Scope<'b>
    where
        'a: 'b,
    {
        Scope {
            data: Data::Item(data),
            ctx: self.ctx,
            bucketing: self.bucketing,
            flag_key: self.flag_key,
            run: self.run,
        }
    }
}

/// Nesting limit for `$ref` substitution, to stop reference loops.
const MAX_REF_DEPTH: usize = 32;

/// Replaces every `{"$ref": "name"}` with the named evaluator, as flagd
/// does before parsing targeting. Other keys of the referring object are
/// kept beside the evaluator's.
pub(crate) fn resolve_refs(
    value: &Value,
    evaluators: &Map<String, Value>,
) -> Result<Value, String> {
    fn walk(v: &Value, evaluators: &Map<String, Value>, depth: usize) -> Result<Value, String> {
        if depth > MAX_REF_DEPTH {
            return Err("`$ref` nesting is too deep (a reference loop?)".to_owned());
        }
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| walk(i, evaluators, depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, item) in map {
                    if k == "$ref" {
                        let name = item.as_str().ok_or_else(|| {
                            "`$ref` must name an evaluator with a string".to_owned()
                        })?;
                        let target = evaluators
                            .get(name)
                            .ok_or_else(|| format!("`$ref` names unknown evaluator `{name}`"))?;
                        match walk(target, evaluators, depth + 1)? {
                            Value::Object(body) => out.extend(body),
                            _ => return Err(format!("evaluator `{name}` is not a JSON object")),
                        }
                    } else {
                        out.insert(k.clone(), walk(item, evaluators, depth)?);
                    }
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }
    walk(value, evaluators, 0)
}

/// Compiles JsonLogic for flag `flag_key` (which `$flagd.flagKey` becomes).
pub(crate) fn compile(value: &Value, flag_key: &str) -> Result<Expr, String> {
    Compiler { flag_key }.expr(value)
}

struct Compiler<'k> {
    flag_key: &'k str,
}

impl Compiler<'_> {
    fn expr(&self, value: &Value) -> Result<Expr, String> {
        match value {
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|i| self.expr(i))
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|e| matches!(e, Expr::Lit(_))) {
                    Ok(Expr::Lit(Value::Array(
                        items
                            .into_iter()
                            .map(|e| match e {
                                Expr::Lit(v) => v,
                                _ => Value::Null,
                            })
                            .collect(),
                    )))
                } else {
                    Ok(Expr::Array(items.into_boxed_slice()))
                }
            }
            Value::Object(map) if map.len() == 1 => {
                let (op, args) = map
                    .iter()
                    .next()
                    .map(|(k, v)| (k.as_str(), v))
                    .unwrap_or(("", value));
                self.operation(op, args)
            }
            // Objects with other shapes are data.
            other => Ok(Expr::Lit(other.clone())),
        }
    }

    fn args(&self, args: &Value) -> Result<Vec<Expr>, String> {
        match args {
            Value::Array(items) => items.iter().map(|i| self.expr(i)).collect(),
            single => Ok(vec![self.expr(single)?]),
        }
    }

    fn boxed(&self, args: &Value) -> Result<Box<[Expr]>, String> {
        Ok(self.args(args)?.into_boxed_slice())
    }

    fn two(&self, op: &str, args: &Value) -> Result<(Box<Expr>, Box<Expr>), String> {
        let mut a = self.args(args)?.into_iter();
        let first = a.next().unwrap_or(Expr::Lit(Value::Null));
        let second = a.next().unwrap_or(Expr::Lit(Value::Null));
        if a.next().is_some() {
            return Err(format!("`{op}` takes two arguments"));
        }
        Ok((Box::new(first), Box::new(second)))
    }

    fn operation(&self, op: &str, args: &Value) -> Result<Expr, String> {
        Ok(match op {
            "var" => self.var(args)?,
            "missing" => Expr::Missing(self.boxed(args)?),
            "missing_some" => {
                let (a, b) = self.two(op, args)?;
                Expr::MissingSome(a, b)
            }
            "if" | "?:" => Expr::If(self.boxed(args)?),
            "and" => Expr::And(self.boxed(args)?),
            "or" => Expr::Or(self.boxed(args)?),
            "!" => Expr::Not(Box::new(self.first(args)?)),
            "!!" => Expr::Truthy(Box::new(self.first(args)?)),
            "==" => {
                let (a, b) = self.two(op, args)?;
                Expr::Eq(a, b)
            }
            "===" => {
                let (a, b) = self.two(op, args)?;
                Expr::StrictEq(a, b)
            }
            "!=" => {
                let (a, b) = self.two(op, args)?;
                Expr::Ne(a, b)
            }
            "!==" => {
                let (a, b) = self.two(op, args)?;
                Expr::StrictNe(a, b)
            }
            "<" => Expr::Cmp(Ordering::Less, false, self.compare_args(op, args)?),
            "<=" => Expr::Cmp(Ordering::Less, true, self.compare_args(op, args)?),
            ">" => Expr::Cmp(Ordering::Greater, false, self.compare_args(op, args)?),
            ">=" => Expr::Cmp(Ordering::Greater, true, self.compare_args(op, args)?),
            "+" => Expr::Arith(Arith::Add, self.boxed(args)?),
            "-" => Expr::Arith(Arith::Sub, self.boxed(args)?),
            "*" => Expr::Arith(Arith::Mul, self.boxed(args)?),
            "/" => Expr::Arith(Arith::Div, self.boxed(args)?),
            "%" => Expr::Arith(Arith::Mod, self.boxed(args)?),
            "min" => Expr::Arith(Arith::Min, self.boxed(args)?),
            "max" => Expr::Arith(Arith::Max, self.boxed(args)?),
            "in" => {
                let (a, b) = self.two(op, args)?;
                match *b {
                    Expr::Lit(Value::Array(items)) => Expr::InList(a, ValueSet::new(&items)),
                    b => Expr::In(a, Box::new(b)),
                }
            }
            "cat" => Expr::Cat(self.boxed(args)?),
            "substr" => Expr::Substr(self.boxed(args)?),
            "merge" => Expr::Merge(self.boxed(args)?),
            "map" => {
                let (a, b) = self.two(op, args)?;
                Expr::Map(a, b)
            }
            "filter" => {
                let (a, b) = self.two(op, args)?;
                Expr::Filter(a, b)
            }
            "all" => {
                let (a, b) = self.two(op, args)?;
                Expr::All(a, b)
            }
            "none" => {
                let (a, b) = self.two(op, args)?;
                Expr::None(a, b)
            }
            "some" => {
                let (a, b) = self.two(op, args)?;
                Expr::Some(a, b)
            }
            "reduce" => {
                let mut a = self.args(args)?.into_iter();
                let list = a.next().unwrap_or(Expr::Lit(Value::Null));
                let body = a.next().unwrap_or(Expr::Lit(Value::Null));
                let init = a.next().unwrap_or(Expr::Lit(Value::Null));
                Expr::Reduce(Box::new(list), Box::new(body), Box::new(init))
            }
            "log" => self.first(args)?,
            "fractional" => Expr::Fractional(Fractional::new(self.args(args)?, self.flag_key)),
            "sem_ver" => Expr::SemVer(self.boxed(args)?),
            "starts_with" => Expr::StartsWith(self.boxed(args)?),
            "ends_with" => Expr::EndsWith(self.boxed(args)?),
            other => return Err(format!("unknown JsonLogic operator `{other}`")),
        })
    }

    fn first(&self, args: &Value) -> Result<Expr, String> {
        Ok(self
            .args(args)?
            .into_iter()
            .next()
            .unwrap_or(Expr::Lit(Value::Null)))
    }

    fn compare_args(&self, op: &str, args: &Value) -> Result<Box<[Expr]>, String> {
        let a = self.boxed(args)?;
        if !(2..=3).contains(&a.len()) {
            return Err(format!("`{op}` takes two or three arguments"));
        }
        Ok(a)
    }

    fn var(&self, args: &Value) -> Result<Expr, String> {
        let (path, default) = match args {
            Value::Array(items) => (
                items.first().cloned().unwrap_or(Value::Null),
                items
                    .get(1)
                    .map(|d| self.expr(d))
                    .transpose()?
                    .map(Box::new),
            ),
            other => (other.clone(), None),
        };
        let dotted = match &path {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => String::new(),
            Value::Object(_) => {
                return Ok(Expr::VarDyn(Box::new(self.expr(&path)?), default));
            }
            _ => return Err("`var` takes a path string".to_owned()),
        };
        Ok(match dotted.as_str() {
            "" => Expr::Data,
            "$flagd.flagKey" => Expr::Lit(Value::String(self.flag_key.to_owned())),
            "$flagd.timestamp" => Expr::Timestamp,
            "$flagd" => Expr::FlagdObject(self.flag_key.into()),
            d => Expr::Var(Path::parse(d), default),
        })
    }
}

impl Fractional {
    fn new(args: Vec<Expr>, flag_key: &str) -> Self {
        // Buckets are fixed when every argument is a literal array; the
        // first argument is then a bucket too (default bucketing value).
        let fixed =
            if !args.is_empty() && args.iter().all(|a| matches!(a, Expr::Lit(Value::Array(_)))) {
                let lits: Vec<&Value> = args
                    .iter()
                    .filter_map(|a| match a {
                        Expr::Lit(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                Buckets::parse(lits.into_iter())
            } else {
                None
            };
        Fractional {
            args: args.into_boxed_slice(),
            flag_prefix: Prefix::new(flag_key),
            fixed,
        }
    }

    /// The default bucketing value: flag key and targeting key, which must
    /// be a string (v2) or a non-empty string (v3).
    #[inline]
    fn default_hash(&self, scope: &Scope<'_>) -> Option<u32> {
        let key = scope.ctx.targeting_key()?;
        if key.is_empty() && scope.bucketing == Bucketing::Cbor {
            return None;
        }
        Some(self.flag_prefix.hash(scope.bucketing, key))
    }

    fn eval<'a>(&'a self, scope: &Scope<'a>) -> Cow<'a, Value> {
        if let Some(buckets) = &self.fixed {
            let Some(hash) = self.default_hash(scope) else {
                return scope.fail();
            };
            return buckets
                .pick(hash, scope, None)
                .map_or_else(|| scope.fail(), Cow::Borrowed);
        }
        let Some(first) = self.args.first() else {
            return scope.fail();
        };
        let first = first.eval(scope);
        let (hash, rest) = match (scope.bucketing, &*first) {
            (Bucketing::Concat, Value::String(s)) => {
                (Some(murmur3_32(&[s.as_bytes()], 0)), &self.args[1..])
            }
            // An explicit bucketing value that is missing gives null (the
            // default variant), as flagd's evaluators do; only an omitted
            // one falls back to the targeting key.
            (Bucketing::Concat, Value::Null) => return scope.fail(),
            (Bucketing::Concat, _) => (self.default_hash(scope), &self.args[..]),
            (Bucketing::Cbor, Value::Array(_)) => (self.default_hash(scope), &self.args[..]),
            (Bucketing::Cbor, Value::Null) => return scope.fail(),
            (Bucketing::Cbor, v) => (Some(hash_cbor(v)), &self.args[1..]),
        };
        let Some(hash) = hash else {
            return scope.fail();
        };
        // The first argument was already evaluated; reuse it when it is a
        // bucket rather than evaluating it twice.
        let mut values: Vec<Cow<'_, Value>> = Vec::with_capacity(rest.len());
        let reuse_first = rest.len() == self.args.len();
        for (i, a) in rest.iter().enumerate() {
            if i == 0 && reuse_first {
                values.push(first.clone());
            } else {
                values.push(a.eval(scope));
            }
        }
        // The first argument was the bucketing value unless it is a bucket.
        let hashed = (!reuse_first).then_some(&*first);
        match Buckets::parse(values.iter().map(|v| &**v))
            .and_then(|b| b.pick(hash, scope, hashed).cloned())
        {
            Some(v) => Cow::Owned(v),
            None => scope.fail(),
        }
    }
}

impl Buckets {
    /// Reads `[name, weight?]` entries. A missing or null weight counts 1,
    /// a negative one 0; a fractional weight, a total beyond i32, or no
    /// entry at all is invalid.
    fn parse<'v>(entries: impl Iterator<Item = &'v Value>) -> Option<Buckets> {
        let mut names = Vec::new();
        let mut weights = Vec::new();
        let mut total: u64 = 0;
        for entry in entries {
            let Value::Array(pair) = entry else {
                return None;
            };
            let name = match pair.first()? {
                v @ (Value::String(_) | Value::Bool(_) | Value::Number(_) | Value::Null) => {
                    v.clone()
                }
                _ => return None,
            };
            let weight = match pair.get(1) {
                None | Some(Value::Null) => 1,
                Some(Value::Number(n)) => {
                    let w = n.as_f64()?;
                    if w.fract() != 0.0 || w > f64::from(i32::MAX) {
                        return None;
                    }
                    if w < 0.0 { 0 } else { w as u64 }
                }
                Some(_) => return None,
            };
            total += weight;
            names.push(name);
            weights.push(weight);
        }
        if names.is_empty() || total > i32::MAX as u64 {
            return None;
        }
        Some(Buckets {
            names,
            weights,
            total,
        })
    }

    /// The bucket's variant, or `None` when all weights are zero.
    ///
    /// In explain mode the pick is recorded in the scope's run, with what
    /// was hashed: `hashed`, or without it the flag key and targeting key.
    #[inline]
    fn pick(&self, hash: u32, scope: &Scope<'_>, hashed: Option<&Value>) -> Option<&Value> {
        if self.total == 0 {
            return None;
        }
        let b = bucket(hash, self.total);
        let i = pick(&self.weights, b)?;
        let name = self.names.get(i);
        if let Some(sink) = scope.run.fractional {
            self.record(sink, scope, hashed, hash, b, i);
        }
        name
    }

    #[cold]
    fn record(
        &self,
        sink: &Cell<Vec<RolloutTrace>>,
        scope: &Scope<'_>,
        hashed: Option<&Value>,
        hash: u32,
        b: u64,
        i: usize,
    ) {
        let (bucket_by, value, salt) = match hashed {
            Some(v) => ("value".to_owned(), v.clone(), None),
            None => (
                TARGETING_KEY.to_owned(),
                scope.ctx.targeting_key().map_or(Value::Null, Value::from),
                Some(scope.flag_key.to_owned()),
            ),
        };
        let (percent, weights, variant) = RolloutTrace::walk(
            b,
            self.total,
            self.names.iter().cloned().zip(self.weights.iter().copied()),
            i,
        );
        let mut picks = sink.take();
        picks.push(RolloutTrace {
            bucket_by,
            value,
            salt,
            hash,
            bucket: b,
            total: self.total,
            percent,
            weights,
            variant,
        });
        sink.set(picks);
    }
}

/// flagd truthiness.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A number result: integral values become JSON integers so that `cat`
/// and variant names print `3`, not `3.0`.
fn num(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// JavaScript-like conversion to a number; NaN when impossible.
fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                0.0
            } else {
                t.parse().unwrap_or(f64::NAN)
            }
        }
        Value::Array(_) | Value::Object(_) => f64::NAN,
    }
}

/// JavaScript-like string form, as `cat` and `in` use.
fn to_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        Value::String(s) => Cow::Borrowed(s),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !(n.is_i64() || n.is_u64()) => Cow::Owned(num(f).to_string()),
            _ => Cow::Owned(n.to_string()),
        },
        Value::Array(items) => Cow::Owned(
            items
                .iter()
                .map(|i| to_text(i).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Object(_) => Cow::Owned(v.to_string()),
    }
}

/// Loose (`==`) equality, JavaScript-like for scalars.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        // A missing attribute equals `false`, as flagd's evaluators have it
        // (`{"==": [{"var": "beta"}, false]}` holds when `beta` is absent).
        (Value::Null, Value::Bool(x)) | (Value::Bool(x), Value::Null) => !x,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            json_eq(a, b)
        }
        _ => {
            let (x, y) = (to_number(a), to_number(b));
            x == y
        }
    }
}

/// Strict (`===`) equality: same type and value.
fn strict_eq(a: &Value, b: &Value) -> bool {
    json_eq(a, b)
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => to_number(a).partial_cmp(&to_number(b)),
    }
}

fn bool_cow<'a>(b: bool) -> Cow<'a, Value> {
    Cow::Owned(Value::Bool(b))
}

impl Expr {
    /// Evaluates the expression. Never fails: bad arguments give `null`.
    ///
    /// The common operators are handled here; the rest live in
    /// [`Expr::eval_rare`] so this function, entered once per node, keeps a
    /// small stack frame.
    pub(crate) fn eval<'a>(&'a self, scope: &Scope<'a>) -> Cow<'a, Value> {
        let null = || Cow::Owned(Value::Null);
        match self {
            Expr::Lit(v) => Cow::Borrowed(v),
            Expr::Var(path, default) => {
                let found = match scope.data {
                    Data::Root => scope.ctx.lookup(path),
                    Data::Item(v) => descend(v, &path.segments),
                };
                match (found, default) {
                    (Some(v), _) if !v.is_null() => Cow::Borrowed(v),
                    (_, Some(d)) => d.eval(scope),
                    (found, None) => found.map_or_else(null, Cow::Borrowed),
                }
            }
            Expr::If(args) => {
                let mut i = 0;
                while i + 1 < args.len() {
                    if truthy(&args[i].eval(scope)) {
                        return args[i + 1].eval(scope);
                    }
                    i += 2;
                }
                args.get(i).map_or_else(null, |e| e.eval(scope))
            }
            Expr::And(args) => {
                let mut last = null();
                for a in args.iter() {
                    last = a.eval(scope);
                    if !truthy(&last) {
                        return last;
                    }
                }
                last
            }
            Expr::Or(args) => {
                let mut last = null();
                for a in args.iter() {
                    last = a.eval(scope);
                    if truthy(&last) {
                        return last;
                    }
                }
                last
            }
            Expr::Not(a) => bool_cow(!truthy(&unwrap_single(a.eval(scope)))),
            Expr::Truthy(a) => bool_cow(truthy(&unwrap_single(a.eval(scope)))),
            Expr::Eq(a, b) => bool_cow(loose_eq(&a.eval(scope), &b.eval(scope))),
            Expr::Ne(a, b) => bool_cow(!loose_eq(&a.eval(scope), &b.eval(scope))),
            Expr::StrictEq(a, b) => bool_cow(strict_eq(&a.eval(scope), &b.eval(scope))),
            Expr::StrictNe(a, b) => bool_cow(!strict_eq(&a.eval(scope), &b.eval(scope))),
            Expr::In(needle, hay) => {
                let needle = needle.eval(scope);
                let hay = hay.eval(scope);
                bool_cow(match &*hay {
                    Value::String(s) => s.contains(&*to_text(&needle)),
                    Value::Array(items) => items.iter().any(|i| strict_eq(i, &needle)),
                    _ => false,
                })
            }
            Expr::InList(needle, set) => bool_cow(set.contains(&needle.eval(scope))),
            Expr::Fractional(f) => f.eval(scope),
            Expr::SemVer(args) => sem_ver(args, scope),
            Expr::StartsWith(args) => string_test(args, scope, |s, p| s.starts_with(p)),
            Expr::EndsWith(args) => string_test(args, scope, |s, p| s.ends_with(p)),
            Expr::Cmp(dir, or_equal, args) => {
                let holds = |x: &Value, y: &Value| {
                    compare(x, y).is_some_and(|o| o == *dir || (*or_equal && o == Ordering::Equal))
                };
                let held = match &**args {
                    [a, b] => holds(&a.eval(scope), &b.eval(scope)),
                    [a, b, c] => {
                        let b = b.eval(scope);
                        holds(&a.eval(scope), &b) && holds(&b, &c.eval(scope))
                    }
                    _ => false,
                };
                bool_cow(held)
            }
            _ => self.eval_rare(scope),
        }
    }

    #[inline(never)]
    fn eval_rare<'a>(&'a self, scope: &Scope<'a>) -> Cow<'a, Value> {
        let null = || Cow::Owned(Value::Null);
        match self {
            Expr::Array(items) => Cow::Owned(Value::Array(
                items.iter().map(|i| i.eval(scope).into_owned()).collect(),
            )),
            Expr::VarDyn(path, default) => {
                let p = path.eval(scope);
                let dotted = to_text(&p);
                let path = Path::parse(&dotted);
                let found = match scope.data {
                    Data::Root => scope.ctx.lookup(&path).cloned(),
                    Data::Item(v) => descend(v, &path.segments).cloned(),
                };
                match (found, default) {
                    (Some(v), _) if !v.is_null() => Cow::Owned(v),
                    (_, Some(d)) => d.eval(scope),
                    _ => null(),
                }
            }
            Expr::Data => match scope.data {
                Data::Root => Cow::Owned(scope.ctx.to_json()),
                Data::Item(v) => Cow::Borrowed(v),
            },
            Expr::Timestamp => scope
                .ctx
                .timestamp()
                .map_or_else(null, |t| Cow::Owned(Value::from(t))),
            Expr::FlagdObject(key) => {
                let mut m = Map::new();
                m.insert("flagKey".into(), Value::String(key.to_string()));
                if let Some(t) = scope.ctx.timestamp() {
                    m.insert("timestamp".into(), Value::from(t));
                }
                Cow::Owned(Value::Object(m))
            }
            Expr::Missing(args) => {
                let keys = flatten_keys(args, scope);
                Cow::Owned(Value::Array(missing_keys(&keys, scope)))
            }
            Expr::MissingSome(need, keys) => {
                let need = to_number(&need.eval(scope));
                let keys = keys.eval(scope);
                let keys: Vec<Value> = match &*keys {
                    Value::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                let missing = missing_keys(&keys, scope);
                let present = (keys.len() - missing.len()) as f64;
                Cow::Owned(Value::Array(if present >= need {
                    Vec::new()
                } else {
                    missing
                }))
            }
            Expr::Arith(op, args) => arith(*op, args, scope),
            Expr::Cat(args) => {
                let mut s = String::new();
                for a in args.iter() {
                    s.push_str(&to_text(&a.eval(scope)));
                }
                Cow::Owned(Value::String(s))
            }
            Expr::Substr(args) => substr(args, scope),
            Expr::Merge(args) => {
                let mut out = Vec::new();
                for a in args.iter() {
                    match a.eval(scope).into_owned() {
                        Value::Array(items) => out.extend(items),
                        other => out.push(other),
                    }
                }
                Cow::Owned(Value::Array(out))
            }
            Expr::Map(list, body) => {
                let list = list.eval(scope);
                let items = as_items(&list);
                Cow::Owned(Value::Array(
                    items
                        .iter()
                        .map(|i| body.eval(&scope.item(i)).into_owned())
                        .collect(),
                ))
            }
            Expr::Filter(list, body) => {
                let list = list.eval(scope);
                let items = as_items(&list);
                Cow::Owned(Value::Array(
                    items
                        .iter()
                        .filter(|i| truthy(&body.eval(&scope.item(i))))
                        .cloned()
                        .collect(),
                ))
            }
            Expr::Reduce(list, body, init) => {
                let list = list.eval(scope);
                let mut acc = init.eval(scope).into_owned();
                for item in as_items(&list) {
                    let mut data = Map::new();
                    data.insert("current".into(), item.clone());
                    data.insert("accumulator".into(), acc);
                    let data = Value::Object(data);
                    acc = body.eval(&scope.item(&data)).into_owned();
                }
                Cow::Owned(acc)
            }
            Expr::All(list, body) => {
                let list = list.eval(scope);
                let items = as_items(&list);
                bool_cow(
                    !items.is_empty() && items.iter().all(|i| truthy(&body.eval(&scope.item(i)))),
                )
            }
            Expr::None(list, body) => {
                let list = list.eval(scope);
                bool_cow(
                    !as_items(&list)
                        .iter()
                        .any(|i| truthy(&body.eval(&scope.item(i)))),
                )
            }
            Expr::Some(list, body) => {
                let list = list.eval(scope);
                bool_cow(
                    as_items(&list)
                        .iter()
                        .any(|i| truthy(&body.eval(&scope.item(i)))),
                )
            }
            _ => null(),
        }
    }
}

fn as_items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        _ => &[],
    }
}

/// `!` and `!!` read a one-element argument list as that element.
fn unwrap_single(v: Cow<'_, Value>) -> Cow<'_, Value> {
    match &*v {
        Value::Array(items) if items.len() == 1 => Cow::Owned(items[0].clone()),
        _ => v,
    }
}

fn flatten_keys(args: &[Expr], scope: &Scope<'_>) -> Vec<Value> {
    let mut keys = Vec::new();
    for a in args {
        match a.eval(scope).into_owned() {
            Value::Array(items) => keys.extend(items),
            other => keys.push(other),
        }
    }
    keys
}

fn missing_keys(keys: &[Value], scope: &Scope<'_>) -> Vec<Value> {
    keys.iter()
        .filter(|k| {
            let path = Path::parse(&to_text(k));
            let found = match scope.data {
                Data::Root => scope.ctx.lookup(&path),
                Data::Item(v) => descend(v, &path.segments),
            };
            matches!(found, None | Some(Value::Null))
                || found.is_some_and(|v| v.as_str() == Some(""))
        })
        .cloned()
        .collect()
}

fn arith<'a>(op: Arith, args: &'a [Expr], scope: &Scope<'a>) -> Cow<'a, Value> {
    let nums: Vec<f64> = args.iter().map(|a| to_number(&a.eval(scope))).collect();
    let out = match (op, nums.as_slice()) {
        (Arith::Add, xs) => xs.iter().sum(),
        (Arith::Mul, [first, rest @ ..]) => rest.iter().fold(*first, |acc, x| acc * x),
        (Arith::Sub, [x]) => -x,
        (Arith::Sub, [x, y]) => x - y,
        (Arith::Div, [x, y]) => x / y,
        (Arith::Mod, [x, y]) => x % y,
        (Arith::Min, [first, rest @ ..]) => rest.iter().fold(*first, |acc, x| {
            if x.is_nan() || acc.is_nan() {
                f64::NAN
            } else {
                acc.min(*x)
            }
        }),
        (Arith::Max, [first, rest @ ..]) => rest.iter().fold(*first, |acc, x| {
            if x.is_nan() || acc.is_nan() {
                f64::NAN
            } else {
                acc.max(*x)
            }
        }),
        _ => f64::NAN,
    };
    Cow::Owned(num(out))
}

fn substr<'a>(args: &'a [Expr], scope: &Scope<'a>) -> Cow<'a, Value> {
    let source = args
        .first()
        .map(|a| a.eval(scope))
        .unwrap_or(Cow::Owned(Value::Null));
    let chars: Vec<char> = to_text(&source).chars().collect();
    let n = chars.len() as i64;
    let start = args.get(1).map_or(0.0, |a| to_number(&a.eval(scope)));
    let start = if start.is_nan() { 0 } else { start as i64 };
    let from = if start < 0 {
        (n + start).max(0)
    } else {
        start.min(n)
    };
    let to = match args.get(2).map(|a| to_number(&a.eval(scope))) {
        None => n,
        Some(l) if l.is_nan() => from,
        Some(l) if l < 0.0 => (n + l as i64).max(from),
        Some(l) => (from + l as i64).min(n),
    };
    Cow::Owned(Value::String(
        chars[from as usize..to as usize].iter().collect(),
    ))
}

fn sem_ver<'a>(args: &'a [Expr], scope: &Scope<'a>) -> Cow<'a, Value> {
    let [lhs, op, rhs] = args else {
        return scope.fail();
    };
    let version = |v: &Value| -> Option<semver::Version> {
        match v {
            Value::String(s) => parse_semver(s),
            Value::Number(n) => parse_semver(&to_text(&Value::Number(n.clone()))),
            _ => None,
        }
    };
    let op = op.eval(scope);
    let Some(op) = op.as_str() else {
        return scope.fail();
    };
    let (lhs, rhs) = (lhs.eval(scope), rhs.eval(scope));
    // A missing attribute is no version: the comparison is false and
    // targeting carries on, as flagd's evaluators do. A value that is
    // there but is not a version voids the targeting (flagd's test suite).
    if lhs.is_null() || rhs.is_null() {
        return bool_cow(false);
    }
    let (Some(a), Some(b)) = (version(&lhs), version(&rhs)) else {
        return scope.fail();
    };
    let ord = cmp_semver(&a, &b);
    let holds = match op {
        "=" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        ">=" => ord != Ordering::Less,
        "~" => a.major == b.major && a.minor == b.minor,
        "^" => a.major == b.major,
        _ => return scope.fail(),
    };
    bool_cow(holds)
}

fn string_test<'a>(
    args: &'a [Expr],
    scope: &Scope<'a>,
    test: fn(&str, &str) -> bool,
) -> Cow<'a, Value> {
    let [s, p] = args else {
        return scope.fail();
    };
    match (&*s.eval(scope), &*p.eval(scope)) {
        (Value::String(s), Value::String(p)) => bool_cow(test(s, p)),
        // A missing attribute does not start or end with anything: false,
        // and targeting carries on, as flagd's evaluators do.
        (Value::Null, _) | (_, Value::Null) => bool_cow(false),
        _ => scope.fail(),
    }
}

#[cfg(test)]
mod tests;
