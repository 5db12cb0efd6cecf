//! Native documents in flagd form, for flagd's in-process providers, which
//! receive a whole flagd document and evaluate it themselves: each flag is
//! translated exactly or not at all.
//!
//! "Exactly" means: for every context, a flagd evaluator gives the same
//! value and variant as Vexil's native evaluation. Native clauses have
//! rules JsonLogic does not share (a missing or null attribute never
//! matches, not even negated; an array attribute matches when any item
//! does; a value of the wrong type is no match rather than a coercion), so
//! each clause is written with explicit guards:
//!
//! - "is a string": `{"===": [{"cat": [x]}, x]}` (only a string survives
//!   `cat` unchanged);
//! - "is a number": not a string, `cat` of it is no boolean (Python's `==`
//!   takes `1` and `true` as equal, and its `cat` writes `True`) and no
//!   object, and `{"===": [{"+": [x]}, x]}`;
//! - "present": `{"!==": [x, null]}`;
//! - array attributes: `{"some": [{"merge": [x]}, test({"var": ""})]}`
//!   tests the value, or each item of an array value, alike.
//!
//! Prefixes and suffixes are compared with `substr` rather than flagd's
//! `starts_with` and `ends_with`, which JavaScript's flagd core cannot run
//! inside `some`.
//!
//! What cannot be written exactly leaves the flag out, with an
//! [`Untranslatable`] reason: `matches` (regex dialects differ), semantic
//! versions (each provider parses them its own way, and flagd voids the
//! whole targeting on a value that is not a version), dates,
//! prerequisites, `in` with values other than strings, attribute paths
//! that JsonLogic's `var` reads differently (numeric segments, `length`,
//! `$flagd`), prefixes and suffixes outside the basic multilingual plane,
//! rollouts that bucket by an attribute, salted rollouts under CBOR
//! bucketing, array-valued variants, and any rollout when the providers
//! hash differently from the document.
//!
//! Reasons are the same except:
//!
//! - a native flag that is off and has an off variant answers `DISABLED`
//!   with that variant; flagd's `DISABLED` gives no value, so it becomes an
//!   enabled flag whose default variant is the off variant: `STATIC`;
//! - a rollout answers `SPLIT`; flagd's `fractional` gives
//!   `TARGETING_MATCH`;
//! - a rollout without the targeting key it needs is an error
//!   (`TARGETING_KEY_MISSING`) natively; the translation names a variant
//!   that does not exist, so flagd reports an error too (`GENERAL`), and
//!   neither gives a value.
//!
//! Known limits of "exactly", outside what JsonLogic can guard:
//!
//! - integers beyond 2^53 in contexts compare as 64-bit floats in Vexil and
//!   exactly in Python;
//! - OpenFeature's Python SDK passes an empty targeting key on as none;
//! - the JavaScript core (`@openfeature/flagd-core` 4.0.1, through
//!   `imurmurhash`) hashes UTF-16 code units rather than UTF-8 bytes, so
//!   under [`Bucketing::Concat`] its rollouts agree only for ASCII flag
//!   keys, salts and targeting keys;
//! - JavaScript's JsonLogic throws where unary `+` gives NaN: a numeric
//!   clause on an attribute holding arrays inside an array (`[["a"]]`) is
//!   an error there, where Vexil finds no match.

use std::fmt;

use serde_json::{Map, Value, json};

use super::{FlagdDocument, FlagdFlag, FlagdState};
use crate::compile::WEIGHT_SCALE;
use crate::keyed::Keyed;
use crate::model::{Bucketing, Clause, Document, FlagDef, Operator, Rollout, SegmentDef, Serve};

/// The result of [`to_flagd`]: the flags that translate exactly, and why
/// each other flag was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The flagd document: the translated flags, in document order, and
    /// the document's metadata.
    pub document: FlagdDocument,
    /// The flags left out, in document order.
    pub left_out: Vec<LeftOut>,
}

/// A flag that has no exact flagd form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The flag key.
    pub flag: String,
    /// The first thing found that cannot be translated.
    pub reason: Untranslatable,
}

/// Why a flag has no exact flagd form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Untranslatable {
    /// A `matches` clause: regular expressions have no flagd operator.
    Matches,
    /// A semantic version clause: providers parse versions differently,
    /// and flagd voids the whole targeting on a value that is not one.
    Semver,
    /// A `before` or `after` clause: flagd has no date comparison.
    Dates,
    /// Prerequisites: flagd flags cannot depend on each other.
    Prerequisites,
    /// `in` or `notIn` with values other than strings: JsonLogic equality
    /// between numbers, booleans and null differs among providers.
    InNonString,
    /// An attribute path that JsonLogic's `var` reads differently: a
    /// numeric segment, `length`, or `$flagd`.
    AttributePath,
    /// A rollout, native or `fractional`, while the providers hash with
    /// another scheme than the document.
    BucketingScheme,
    /// A rollout that buckets by an attribute: its type rules (strings and
    /// integers only) have no exact JsonLogic form.
    BucketBy,
    /// A salted rollout under CBOR bucketing: `fractional` cannot hash the
    /// pair (salt, key) there.
    Salt,
    /// A variant whose value is an array: flagd's schema wants objects.
    ArrayVariant,
    /// A `startsWith` or `endsWith` value with characters outside the
    /// basic multilingual plane: JavaScript counts their length
    /// differently.
    NonBmpString,
    /// The flag does not compile (an unknown segment or variant, a
    /// segment cycle); translate only documents that compile.
    Invalid,
}

impl Untranslatable {
    /// A stable snake_case code, e.g. `bucketing_scheme`.
    pub fn code(self) -> &'static str {
        match self {
            Untranslatable::Matches => "matches",
            Untranslatable::Semver => "semver",
            Untranslatable::Dates => "dates",
            Untranslatable::Prerequisites => "prerequisites",
            Untranslatable::InNonString => "in_non_string",
            Untranslatable::AttributePath => "attribute_path",
            Untranslatable::BucketingScheme => "bucketing_scheme",
            Untranslatable::BucketBy => "bucket_by",
            Untranslatable::Salt => "salt",
            Untranslatable::ArrayVariant => "array_variant",
            Untranslatable::NonBmpString => "non_bmp_string",
            Untranslatable::Invalid => "invalid",
        }
    }
}

impl fmt::Display for Untranslatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Untranslatable::Matches => "regular expressions have no flagd form",
            Untranslatable::Semver => "semantic versions compare differently in flagd",
            Untranslatable::Dates => "dates have no flagd form",
            Untranslatable::Prerequisites => "prerequisites have no flagd form",
            Untranslatable::InNonString => "`in` with non-string values differs in flagd",
            Untranslatable::AttributePath => "the attribute path reads differently in flagd",
            Untranslatable::BucketingScheme => "the flagd providers bucket with another scheme",
            Untranslatable::BucketBy => "bucketing by an attribute has no exact flagd form",
            Untranslatable::Salt => "a salt has no flagd form under cbor bucketing",
            Untranslatable::ArrayVariant => "array variants have no flagd form",
            Untranslatable::NonBmpString => {
                "characters outside the basic multilingual plane count differently in flagd"
            }
            Untranslatable::Invalid => "the flag does not compile",
        })
    }
}

/// Translates a native document into flagd form for providers that hash
/// `fractional` with `providers`. Every flag of `doc` ends up either in
/// the document or in `left_out`, never both.
pub fn to_flagd(doc: &Document, providers: Bucketing) -> Translation {
    let mut flags = Vec::with_capacity(doc.flags.len());
    let mut left_out = Vec::new();
    for (key, def) in doc.flags.iter() {
        let t = Translator {
            doc,
            providers,
            flag_key: key,
            def,
        };
        match t.flag() {
            Ok(flag) => flags.push((key.to_owned(), flag)),
            Err(reason) => left_out.push(LeftOut {
                flag: key.to_owned(),
                reason,
            }),
        }
    }
    Translation {
        document: FlagdDocument {
            schema: None,
            bucketing: providers,
            flags: Keyed::from_pairs(flags),
            evaluators: Map::new(),
            metadata: doc.metadata.clone(),
        },
        left_out,
    }
}

/// Segments nest at most this deep (validation refuses cycles; this only
/// keeps an invalid document from recursing without end).
const MAX_SEGMENT_DEPTH: usize = 64;

/// What translating one flag needs.
struct Translator<'a> {
    doc: &'a Document,
    providers: Bucketing,
    flag_key: &'a str,
    def: &'a FlagDef,
}

type Result<T> = std::result::Result<T, Untranslatable>;

impl Translator<'_> {
    fn flag(&self) -> Result<FlagdFlag> {
        let def = self.def;
        if !def.prerequisites.is_empty() {
            return Err(Untranslatable::Prerequisites);
        }
        if def.variants.iter().any(|(_, v)| v.is_array()) {
            return Err(Untranslatable::ArrayVariant);
        }
        for (name, _) in def.targets.iter() {
            self.variant(name)?;
        }
        let metadata = def.metadata.clone();
        let variants = def.variants.clone();
        if !def.enabled {
            // flagd's DISABLED gives no value; an off variant is served by
            // an enabled flag without targeting instead (reason STATIC).
            return Ok(match &def.off_variant {
                None => FlagdFlag {
                    state: FlagdState::Disabled,
                    variants,
                    default_variant: None,
                    targeting: None,
                    metadata,
                },
                Some(off) => FlagdFlag {
                    state: FlagdState::Enabled,
                    variants,
                    default_variant: Some(self.variant(off)?.to_owned()),
                    targeting: None,
                    metadata,
                },
            });
        }
        if let Some(targeting) = &def.targeting {
            // Already flagd JsonLogic: passed through as it is.
            if uses_fractional(targeting) && self.doc.bucketing != self.providers {
                return Err(Untranslatable::BucketingScheme);
            }
            let default_variant = match &def.default_serve {
                None => None,
                Some(Serve {
                    variant: Some(v),
                    rollout: None,
                }) => Some(self.variant(v)?.to_owned()),
                Some(_) => return Err(Untranslatable::Invalid),
            };
            return Ok(FlagdFlag {
                state: FlagdState::Enabled,
                variants,
                default_variant,
                targeting: Some(targeting.clone()),
                metadata,
            });
        }
        // Branches of one `if`: individual targets, then rules in order.
        let mut branches = Vec::new();
        let key = json!({"var": "targetingKey"});
        for (name, keys) in def.targets.iter() {
            if !keys.is_empty() {
                branches.push(json!({"in": [key, keys]}));
                branches.push(Value::String(name.to_owned()));
            }
        }
        for rule in &def.rules {
            branches.push(self.all(&rule.clauses, 0)?);
            branches.push(self.serve(&rule.serve)?);
        }
        let (default_variant, otherwise) = match &def.default_serve {
            None => (None, Value::Null),
            Some(Serve {
                variant: Some(v),
                rollout: None,
            }) => (Some(self.variant(v)?.to_owned()), Value::Null),
            Some(serve) => (None, self.serve(serve)?),
        };
        let targeting = if branches.is_empty() {
            // No targeting at all: the default variant, reason STATIC.
            Some(otherwise).filter(|t| !t.is_null())
        } else {
            branches.push(otherwise);
            Some(json!({ "if": branches }))
        };
        Ok(FlagdFlag {
            state: FlagdState::Enabled,
            variants,
            default_variant,
            targeting,
            metadata,
        })
    }

    /// The variant key, checked to exist.
    fn variant<'v>(&self, name: &'v str) -> Result<&'v str> {
        match self.def.variants.get(name) {
            Some(_) => Ok(name),
            None => Err(Untranslatable::Invalid),
        }
    }

    /// What a rule or the default serves, as JsonLogic giving a variant key.
    fn serve(&self, serve: &Serve) -> Result<Value> {
        match (&serve.variant, &serve.rollout) {
            (Some(v), None) => Ok(Value::String(self.variant(v)?.to_owned())),
            (None, Some(r)) => self.rollout(r),
            _ => Err(Untranslatable::Invalid),
        }
    }

    /// A rollout as `fractional` with the same integer weights, in the
    /// same order, hashing the same bytes.
    fn rollout(&self, r: &Rollout) -> Result<Value> {
        if self.doc.bucketing != self.providers {
            return Err(Untranslatable::BucketingScheme);
        }
        if r.bucket_by.is_some() {
            return Err(Untranslatable::BucketBy);
        }
        let mut buckets = Vec::with_capacity(r.weights.len());
        for (name, &w) in r.weights.iter() {
            let scaled = (w * WEIGHT_SCALE).round();
            if !(0.0..=100.0 * WEIGHT_SCALE).contains(&scaled) {
                return Err(Untranslatable::Invalid);
            }
            buckets.push(json!([self.variant(name)?, scaled as u64]));
        }
        let key = json!({"var": "targetingKey"});
        let (has_key, fractional) = match self.providers {
            // The hashed bytes are the salt (or flag key) followed by the
            // targeting key, given to `fractional` as an explicit string;
            // an empty targeting key is a key.
            Bucketing::Concat => {
                let prefix = r.salt.as_deref().unwrap_or(self.flag_key);
                let mut args = vec![json!({"cat": [prefix, key]})];
                args.extend(buckets);
                (json!({"!==": [key, null]}), json!({ "fractional": args }))
            }
            // The hashed value is the CBOR array [flag key, targeting
            // key], which only `fractional`'s default computes; an empty
            // targeting key counts as missing.
            Bucketing::Cbor => {
                if r.salt.as_deref().is_some_and(|s| s != self.flag_key) {
                    return Err(Untranslatable::Salt);
                }
                (key.clone(), json!({ "fractional": buckets }))
            }
        };
        Ok(json!({"if": [has_key, fractional, self.no_key_variant()]}))
    }

    /// A variant key that is not a variant of the flag: what targeting
    /// names when a rollout has no targeting key, so that flagd reports an
    /// error without a value, as native evaluation does.
    fn no_key_variant(&self) -> String {
        let mut name = "vexil:targeting-key-missing".to_owned();
        while self.def.variants.get(&name).is_some() {
            name.push('!');
        }
        name
    }

    /// All clauses hold (no clauses: always).
    fn all(&self, clauses: &[Clause], depth: usize) -> Result<Value> {
        let mut tests = Vec::with_capacity(clauses.len());
        for c in clauses {
            tests.push(self.clause(c, depth)?);
        }
        Ok(match tests.len() {
            0 => Value::Bool(true),
            1 => tests.swap_remove(0),
            _ => json!({ "and": tests }),
        })
    }

    fn clause(&self, c: &Clause, depth: usize) -> Result<Value> {
        if c.op == Operator::InSegment {
            let mut any = Vec::with_capacity(c.values.len());
            for v in &c.values {
                let name = v.as_str().ok_or(Untranslatable::Invalid)?;
                let seg = self.doc.segments.get(name).ok_or(Untranslatable::Invalid)?;
                any.push(self.segment(seg, depth)?);
            }
            let hit = or(any);
            // Membership does not depend on one attribute: negation is
            // plain.
            return Ok(if c.negate { json!({"!": [hit]}) } else { hit });
        }
        check_path(&c.attribute)?;
        let x = json!({ "var": c.attribute });
        let present = json!({"!==": [x, null]});
        // `notIn` is `in` negated.
        let (op, negate) = match c.op {
            Operator::NotIn => (Operator::In, !c.negate),
            op => (op, c.negate),
        };
        if op == Operator::Exists {
            return Ok(if negate {
                json!({"===": [x, null]})
            } else {
                present
            });
        }
        // The value, or each item of an array value: `merge` makes a list
        // of either (JavaScript's `some` refuses anything but an array).
        // A missing or null attribute fails every test.
        let item = self.test(op, &c.values, &json!({"var": ""}))?;
        let hit = json!({"some": [{"merge": [x]}, item]});
        Ok(if negate {
            json!({"and": [present, {"!": [hit]}]})
        } else {
            hit
        })
    }

    /// The test of one (non-array) value `v`, false for any other type.
    fn test(&self, op: Operator, values: &[Value], v: &Value) -> Result<Value> {
        let strings = || -> Result<Vec<&str>> {
            values
                .iter()
                .map(|x| x.as_str().ok_or(Untranslatable::Invalid))
                .collect()
        };
        Ok(match op {
            Operator::In => {
                let list = values
                    .iter()
                    .map(|x| x.as_str().ok_or(Untranslatable::InNonString))
                    .collect::<Result<Vec<_>>>()?;
                json!({"in": [v, list]})
            }
            // By `substr`, not flagd's `starts_with` and `ends_with`:
            // JavaScript's flagd core cannot run its custom operators
            // inside `some`. Lengths count characters in Python and Vexil
            // and UTF-16 units in JavaScript: the same outside the basic
            // multilingual plane only.
            Operator::StartsWith | Operator::EndsWith => {
                let mut tests = Vec::with_capacity(values.len());
                for s in strings()? {
                    if s.chars().any(|c| c.len_utf16() > 1) {
                        return Err(Untranslatable::NonBmpString);
                    }
                    let n = s.chars().count() as i64;
                    tests.push(match (n, op) {
                        (0, _) => Value::Bool(true),
                        (_, Operator::StartsWith) => json!({"===": [{"substr": [v, 0, n]}, s]}),
                        _ => json!({"===": [{"substr": [v, -n]}, s]}),
                    });
                }
                json!({"and": [is_string(v), or(tests)]})
            }
            // Every string contains the empty string, but JavaScript's
            // `in` finds nothing in an empty one.
            Operator::Contains => {
                let tests = strings()?
                    .into_iter()
                    .map(|s| match s {
                        "" => Value::Bool(true),
                        s => json!({"in": [s, v]}),
                    })
                    .collect();
                json!({"and": [is_string(v), or(tests)]})
            }
            Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
                let name = match op {
                    Operator::Lt => "<",
                    Operator::Lte => "<=",
                    Operator::Gt => ">",
                    _ => ">=",
                };
                let mut tests = Vec::with_capacity(values.len());
                for x in values {
                    if !x.is_number() {
                        return Err(Untranslatable::Invalid);
                    }
                    tests.push(json!({ name: [v, x] }));
                }
                json!({"and": [is_number(v), or(tests)]})
            }
            Operator::Matches => return Err(Untranslatable::Matches),
            Operator::SemverEq
            | Operator::SemverLt
            | Operator::SemverLte
            | Operator::SemverGt
            | Operator::SemverGte => return Err(Untranslatable::Semver),
            Operator::Before | Operator::After => return Err(Untranslatable::Dates),
            Operator::NotIn | Operator::Exists | Operator::InSegment => {
                return Err(Untranslatable::Invalid);
            }
        })
    }

    /// Segment membership: excluded keys lose, included keys win, then any
    /// rule whose clauses all hold.
    fn segment(&self, seg: &SegmentDef, depth: usize) -> Result<Value> {
        if depth >= MAX_SEGMENT_DEPTH {
            return Err(Untranslatable::Invalid);
        }
        let key = json!({"var": "targetingKey"});
        let mut rules = Vec::with_capacity(seg.rules.len());
        for rule in &seg.rules {
            rules.push(self.all(&rule.clauses, depth + 1)?);
        }
        let mut branches = Vec::new();
        if !seg.excluded.is_empty() {
            branches.extend([json!({"in": [key, seg.excluded]}), Value::Bool(false)]);
        }
        if !seg.included.is_empty() {
            branches.extend([json!({"in": [key, seg.included]}), Value::Bool(true)]);
        }
        let rules = or(rules);
        Ok(if branches.is_empty() {
            rules
        } else {
            branches.push(rules);
            json!({ "if": branches })
        })
    }
}

/// Any of `tests` holds (none: never).
fn or(mut tests: Vec<Value>) -> Value {
    match tests.len() {
        0 => Value::Bool(false),
        1 => tests.swap_remove(0),
        _ => json!({ "or": tests }),
    }
}

/// `v` is a string: only a string comes out of `cat` unchanged.
fn is_string(v: &Value) -> Value {
    json!({"===": [{"cat": [v]}, v]})
}

/// `v` is a number: unary `+` leaves only numbers (and, in Python, whose
/// `==` equates `1` and `true`, booleans) unchanged; `cat` tells booleans
/// apart (Python's JsonLogic writes them `True` and `False`). Strings and
/// objects are refused before `+` sees them, since JavaScript's JsonLogic
/// throws where `+` gives NaN.
fn is_number(v: &Value) -> Value {
    json!({"and": [
        {"!": [is_string(v)]},
        {"!": {"in": [{"cat": [v]}, ["true", "false", "True", "False", "[object Object]"]]}},
        {"===": [{"+": [v]}, v]}
    ]})
}

/// Refuses paths that JsonLogic's `var` reads differently from native
/// lookups: numeric segments (native lookups accept `01` or `+1` as
/// indexes), `length` (JavaScript's and Python's `var` give a string's or
/// array's length), and `$flagd` (flagd's own properties).
fn check_path(path: &str) -> Result<()> {
    let mut segments = path.split('.');
    if path.is_empty() || segments.clone().next() == Some("$flagd") {
        return Err(Untranslatable::AttributePath);
    }
    if segments.any(|s| s.is_empty() || s == "length" || s.parse::<usize>().is_ok()) {
        return Err(Untranslatable::AttributePath);
    }
    Ok(())
}

/// Whether JsonLogic uses `fractional` anywhere.
fn uses_fractional(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k == "fractional" || uses_fractional(v)),
        Value::Array(items) => items.iter().any(uses_fractional),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
