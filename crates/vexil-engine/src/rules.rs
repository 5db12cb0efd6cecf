//! Native clauses, compiled: each operator's values parsed once (regexes,
//! versions, dates, hash sets) and matched against a context without
//! allocating.

use std::cmp::Ordering;

use regex_automata::meta::Regex;
use rustc_hash::FxHashSet;
use serde_json::Value;

use crate::compare::{cmp_semver, json_eq, parse_date, parse_semver, str_eq};
use crate::context::{Context, Path};
use crate::explain::{Membership, Tracer};
use crate::snapshot::CompiledSegment;

/// Above this many string values, `in` uses a hash set instead of a scan.
const SMALL_SET: usize = 8;

#[derive(Debug)]
pub(crate) struct CompiledClause {
    pub(crate) path: Path,
    pub(crate) matcher: Matcher,
    pub(crate) negate: bool,
}

#[derive(Debug)]
pub(crate) enum Matcher {
    In(ValueSet),
    StartsWith(Box<[Box<str>]>),
    EndsWith(Box<[Box<str>]>),
    Contains(Box<[Box<str>]>),
    Matches(Box<[Regex]>),
    Number(Cmp, Box<[f64]>),
    Semver(Cmp, Box<[semver::Version]>),
    Before(Box<[f64]>),
    After(Box<[f64]>),
    Exists,
    /// Segment indexes.
    InSegment(Box<[u32]>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Cmp {
    #[inline]
    pub(crate) fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Lte => ord != Ordering::Greater,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Gte => ord != Ordering::Less,
        }
    }
}

/// The values of an `in` clause, split by type for fast matching.
#[derive(Debug, Default)]
pub(crate) struct ValueSet {
    small: Box<[Box<str>]>,
    large: FxHashSet<Box<str>>,
    numbers: Box<[f64]>,
    bools: [bool; 2],
    /// Objects, arrays and null: compared structurally.
    others: Box<[Value]>,
}

impl ValueSet {
    pub(crate) fn new(values: &[Value]) -> Self {
        let mut strings = Vec::new();
        let mut numbers = Vec::new();
        let mut bools = [false; 2];
        let mut others = Vec::new();
        for v in values {
            match v {
                Value::String(s) => strings.push(Box::<str>::from(s.as_str())),
                Value::Number(n) => numbers.extend(n.as_f64()),
                Value::Bool(b) => bools[usize::from(*b)] = true,
                other => others.push(other.clone()),
            }
        }
        let (small, large) = if strings.len() > SMALL_SET {
            (Box::default(), strings.into_iter().collect())
        } else {
            (strings.into_boxed_slice(), FxHashSet::default())
        };
        ValueSet {
            small,
            large,
            numbers: numbers.into_boxed_slice(),
            bools,
            others: others.into_boxed_slice(),
        }
    }

    /// Whether `v` equals one of the values (numbers by value).
    #[inline]
    pub(crate) fn contains(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => {
                if self.large.is_empty() {
                    self.small.iter().any(|x| str_eq(x, s))
                } else {
                    self.large.contains(s.as_str())
                }
            }
            Value::Number(n) => n.as_f64().is_some_and(|f| self.numbers.contains(&f)),
            Value::Bool(b) => self.bools[usize::from(*b)],
            other => self.others.iter().any(|x| json_eq(x, other)),
        }
    }
}

impl Matcher {
    /// Tests one (non-array) context value.
    #[inline]
    fn test(&self, v: &Value) -> bool {
        match self {
            Matcher::In(set) => set.contains(v),
            Matcher::StartsWith(xs) => v
                .as_str()
                .is_some_and(|s| xs.iter().any(|x| s.starts_with(&**x))),
            Matcher::EndsWith(xs) => v
                .as_str()
                .is_some_and(|s| xs.iter().any(|x| s.ends_with(&**x))),
            Matcher::Contains(xs) => v
                .as_str()
                .is_some_and(|s| xs.iter().any(|x| s.contains(&**x))),
            Matcher::Matches(res) => v
                .as_str()
                .is_some_and(|s| res.iter().any(|re| re.is_match(s))),
            Matcher::Number(cmp, xs) => v.as_f64().is_some_and(|n| {
                xs.iter()
                    .any(|x| n.partial_cmp(x).is_some_and(|o| cmp.holds(o)))
            }),
            Matcher::Semver(cmp, xs) => v
                .as_str()
                .and_then(parse_semver)
                .is_some_and(|ver| xs.iter().any(|x| cmp.holds(cmp_semver(&ver, x)))),
            Matcher::Before(xs) => parse_date(v).is_some_and(|d| xs.iter().any(|x| d < *x)),
            Matcher::After(xs) => parse_date(v).is_some_and(|d| xs.iter().any(|x| d > *x)),
            Matcher::Exists | Matcher::InSegment(_) => false,
        }
    }
}

impl CompiledClause {
    /// Whether the clause holds. A missing or null attribute never matches
    /// (not even negated), except for `exists`; a value of the wrong type
    /// is simply no match.
    ///
    /// `t` sees the outcome (and, for `inSegment`, each segment checked);
    /// evaluation passes `NoTrace`, which compiles to nothing.
    #[inline]
    pub(crate) fn matches<T: Tracer>(
        &self,
        ctx: &Context,
        segments: &[CompiledSegment],
        t: &mut T,
    ) -> bool {
        if let Matcher::InSegment(indexes) = &self.matcher {
            let hit = indexes.iter().any(|&i| {
                segments
                    .get(i as usize)
                    .is_some_and(|seg| seg.contains(i, ctx, segments, t))
            });
            let out = hit != self.negate;
            t.clause(self, None, out);
            return out;
        }
        let value = match ctx.lookup(&self.path) {
            found @ (None | Some(Value::Null)) => {
                let out = matches!(self.matcher, Matcher::Exists) && self.negate;
                t.clause(self, found, out);
                return out;
            }
            Some(v) => v,
        };
        let hit = match (&self.matcher, value) {
            (Matcher::Exists, _) => true,
            (m, Value::Array(items)) if !matches!(m, Matcher::In(_)) || !items.is_empty() => {
                items.iter().any(|item| m.test(item)) || m.test(value)
            }
            (m, v) => m.test(v),
        };
        let out = hit != self.negate;
        t.clause(self, Some(value), out);
        out
    }
}

impl CompiledSegment {
    /// Excluded keys lose, included keys win, then any rule may match.
    /// Segment references are acyclic (checked at compile time).
    /// `index` is this segment's position, for `t`.
    pub(crate) fn contains<T: Tracer>(
        &self,
        index: u32,
        ctx: &Context,
        segments: &[CompiledSegment],
        t: &mut T,
    ) -> bool {
        t.segment_start(index);
        if let Some(key) = ctx.targeting_key() {
            if self.excluded.contains(key) {
                t.segment_end(Membership::Excluded);
                return false;
            }
            if self.included.contains(key) {
                t.segment_end(Membership::Included);
                return true;
            }
        }
        let hit = self.rules.iter().enumerate().any(|(n, clauses)| {
            t.segment_rule_start(index, n);
            let hit = clauses.iter().all(|c| c.matches(ctx, segments, t));
            t.segment_rule_end(n, clauses.len(), hit);
            hit
        });
        t.segment_end(if hit {
            Membership::Rule
        } else {
            Membership::NotMatched
        });
        hit
    }
}
