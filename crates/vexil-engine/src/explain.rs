//! Explain mode: why a flag gives what it gives for a context, step by
//! step, for people rather than programs (the UI's evaluate playground).
//!
//! There is one implementation of the decision logic. The walk in
//! `eval.rs` and `rules.rs` (resolution, clauses, segments, rollouts) is
//! generic over a [`Tracer`] and calls it at each decision with what it has
//! already computed. [`explain`] passes a [`Recorder`], which turns the
//! hooks into a [`Trace`]; the two cannot drift apart, since an
//! explanation is a by-product of the evaluation it returns.
//!
//! Evaluation passes [`NoTrace`], whose hooks are empty and always
//! inlined. Its monomorphised walk does the work it did before this module
//! existed, with no allocation and no branch added on the native path
//! (checked by comparing the disassembly of `evaluate`, `resolve` and
//! `evaluate_all_into` before and after). Two small costs remain: `resolve`
//! receives the address of the zero-sized `NoTrace` (two instructions per
//! flag), and flagd's `fractional` checks whether to record its pick (a
//! load and a branch never taken when evaluating). Making the JsonLogic
//! evaluator generic as well would remove the latter, at the price of
//! compiling it twice.
//!
//! A trace needs a few things compilation otherwise drops (clauses as
//! written, rollout salts, segment keys). They are kept in [`Sources`],
//! beside the compiled forms rather than inside them, so that what
//! evaluation walks keeps its size and layout.

use std::cell::Cell;

use serde::Serialize;
use serde_json::Value;

use crate::context::{Context, Path, TARGETING_KEY};
use crate::eval::{Evaluation, Matched, Resolved, ValueType, evaluate, evaluate_index};
use crate::model::{Clause, FlagDef, Operator, SegmentDef, Serve};
use crate::rules::{Cmp, CompiledClause, Matcher};
use crate::snapshot::{CompiledFlag, CompiledRollout, CompiledRule, Snapshot};

// ---------------------------------------------------------------------
// The trace: plain data, serialised for the UI.
// ---------------------------------------------------------------------

/// Why flag `flag` gives what it gives for one context: the steps
/// resolution took, in order.
///
/// Serialised in camelCase, each step tagged by `step`:
///
/// ```json
/// {"flag": "new-checkout", "steps": [
///   {"step": "rule", "index": 0, "clauses": [
///     {"attribute": "country", "operator": "in", "negate": false,
///      "values": ["US", "CA"], "actual": "CA", "result": true}],
///    "notEvaluated": 0, "matched": true},
///   {"step": "serve", "by": "rule", "rule": 0, "variant": "on"}]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// The flag key asked for.
    pub flag: String,
    /// What resolution did, in order. A successful resolution ends with a
    /// [`Step::Serve`]; a failed one (and a type mismatch) with a
    /// [`Step::Error`].
    pub steps: Vec<Step>,
}

/// One step of a [`Trace`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "step",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum Step {
    /// The flag is off: the next step serves its off variant.
    Disabled,
    /// A prerequisite was resolved; when it is not met, the next step
    /// serves the off variant and nothing else is checked.
    Prerequisite {
        /// Its position among the flag's prerequisites.
        index: usize,
        /// The other flag's key.
        flag: String,
        /// The variant it must give.
        required_variant: String,
        /// Whether the other flag is on (an off flag never satisfies).
        enabled: bool,
        /// The variant it gave (null: none, or it failed).
        actual_variant: Option<String>,
        /// Whether the prerequisite holds.
        met: bool,
        /// How the other flag was resolved.
        steps: Vec<Step>,
    },
    /// The individual targets were checked (only for flags that have any).
    Targets {
        /// The context's targeting key (null: none, so no target matches).
        targeting_key: Option<String>,
        /// The variant whose target list holds the key, if any.
        variant: Option<String>,
    },
    /// A rule was tried.
    Rule(RuleTrace),
    /// JsonLogic targeting (flagd flags) ran. Coarser than native rules:
    /// the result and the buckets of `fractional`, not every operator.
    Targeting {
        /// What the targeting expression returned.
        result: Value,
        /// Whether a custom operator met bad arguments, which voids the
        /// result (the default variant is served), as flagd does.
        failed: bool,
        /// Each `fractional` that picked a bucket, in evaluation order.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        fractional: Vec<RolloutTrace>,
    },
    /// What was served, and what decided it.
    Serve {
        /// What decided.
        by: ServedBy,
        /// The rule that matched, when `by` is `rule`.
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<usize>,
        /// The variant served (null: no value, the caller's code default).
        variant: Option<String>,
        /// How a percentage rollout picked the variant, when one did.
        #[serde(skip_serializing_if = "Option::is_none")]
        rollout: Option<RolloutTrace>,
    },
    /// Evaluation failed (the evaluation's error, also for a flag not found
    /// or a value of the wrong type).
    Error {
        /// The OpenFeature error code, e.g. `FLAG_NOT_FOUND`.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// What decided the variant served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ServedBy {
    /// The flag is off, or a prerequisite is not met: the off variant.
    OffVariant,
    /// The targeting key is in an individual target list.
    Target,
    /// A rule matched.
    Rule,
    /// Nothing matched (or nothing to match): the default.
    Default,
    /// JsonLogic targeting named the variant.
    Targeting,
}

/// One rule tried, of a flag or of a segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleTrace {
    /// The rule's position.
    pub index: usize,
    /// The rule's name, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The clauses evaluated, in order. Clauses are AND-ed: evaluation
    /// stops at the first that fails.
    pub clauses: Vec<ClauseTrace>,
    /// How many clauses after the failing one were not evaluated.
    pub not_evaluated: usize,
    /// Whether every clause held.
    pub matched: bool,
}

/// One clause evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseTrace {
    /// The attribute path as written (absent for `inSegment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// The operator as written.
    pub operator: Operator,
    /// `negate` as written.
    pub negate: bool,
    /// The values as written.
    pub values: Vec<Value>,
    /// The context's value at `attribute`; absent when the context has
    /// none (and for `inSegment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// For `inSegment`: each segment checked, in order, up to the first
    /// the context belongs to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentTrace>,
    /// Whether the clause held (after `negate`).
    pub result: bool,
}

/// Whether a context belongs to a segment, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentTrace {
    /// The segment key.
    pub segment: String,
    /// Why the context is in the segment or not.
    pub membership: Membership,
    /// The segment rules tried, in order (none when the targeting key is
    /// listed as included or excluded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleTrace>,
}

/// Why a context is in a segment or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Membership {
    /// The targeting key is excluded (this wins over everything else).
    Excluded,
    /// The targeting key is included.
    Included,
    /// A segment rule matched (the last in `rules`).
    Rule,
    /// Neither listed nor matched by a rule: not in the segment.
    NotMatched,
}

/// How a percentage rollout (native) or a `fractional` (flagd) picked a
/// bucket. Both go through the same arithmetic: the bucket is
/// `(hash × total) >> 32`, and the weights are walked in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrace {
    /// What was hashed: `targetingKey`, an attribute path (native
    /// `bucketBy`), or `value` (a bucketing value given to `fractional`).
    pub bucket_by: String,
    /// The value hashed (null when there was none, e.g. no targeting key).
    pub value: Value,
    /// What the value was hashed after: the rollout's salt, else the flag
    /// key; null when a flagd bucketing value is hashed alone.
    pub salt: Option<String>,
    /// The MurmurHash3 (x86, 32-bit, seed 0) of the hashed bytes.
    pub hash: u32,
    /// The bucket, in `0..total`.
    pub bucket: u64,
    /// The number of buckets (the sum of the weights).
    pub total: u64,
    /// The bucket as a percentage of `total`, in `[0, 100)`.
    pub percent: f64,
    /// The weights walked, in order, with their bucket ranges.
    pub weights: Vec<WeightTrace>,
    /// The variant picked (a variant key; for `fractional`, whatever the
    /// bucket names).
    pub variant: Value,
}

/// One weight of a rollout and the buckets it covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightTrace {
    /// The variant (a variant key; for `fractional`, the bucket's name).
    pub variant: Value,
    /// The weight, in buckets.
    pub weight: u64,
    /// The weight as a percentage of all buckets.
    pub percent: f64,
    /// The first bucket it covers.
    pub from: u64,
    /// One past the last bucket it covers.
    pub to: u64,
}

impl RolloutTrace {
    /// Describes bucket `bucket` of `total` among `weights` (variant,
    /// weight), and the pick at position `picked`.
    pub(crate) fn walk(
        bucket: u64,
        total: u64,
        weights: impl Iterator<Item = (Value, u64)>,
        picked: usize,
    ) -> (f64, Vec<WeightTrace>, Value) {
        let share = |n: u64| {
            if total == 0 {
                0.0
            } else {
                n as f64 * 100.0 / total as f64
            }
        };
        let mut from = 0;
        let mut variant = Value::Null;
        let walked = weights
            .enumerate()
            .map(|(i, (name, weight))| {
                if i == picked {
                    variant = name.clone();
                }
                let w = WeightTrace {
                    variant: name,
                    weight,
                    percent: share(weight),
                    from,
                    to: from + weight,
                };
                from += weight;
                w
            })
            .collect();
        (share(bucket), walked, variant)
    }
}

// ---------------------------------------------------------------------
// The public entry points.
// ---------------------------------------------------------------------

/// Evaluates flag `key` for `ctx` like [`evaluate`], and explains the
/// result.
///
/// The evaluation is the one [`evaluate`] gives (same walk, observed), so
/// it can be shown beside the trace. This is not the hot path: it
/// allocates the trace, clones the values it shows, and resolves
/// prerequisites with their own traces.
pub fn explain<'s>(
    snapshot: &'s Snapshot,
    key: &str,
    ctx: &Context,
    expected: ValueType,
) -> (Evaluation<'s>, Trace) {
    let Some(at) = snapshot.position(key) else {
        let eval = evaluate(snapshot, key, ctx, expected);
        let trace = Recorder::new(snapshot, 0).finish(key, &eval);
        return (eval, trace);
    };
    explain_index(snapshot, at, ctx, expected)
}

/// Explains every flag for `ctx`, in document order, like
/// [`crate::evaluate_all`].
pub fn explain_all<'s>(snapshot: &'s Snapshot, ctx: &Context) -> Vec<(Evaluation<'s>, Trace)> {
    (0..snapshot.flags.len())
        .map(|at| explain_index(snapshot, at, ctx, ValueType::Any))
        .collect()
}

fn explain_index<'s>(
    snapshot: &'s Snapshot,
    at: usize,
    ctx: &Context,
    expected: ValueType,
) -> (Evaluation<'s>, Trace) {
    let mut recorder = Recorder::new(snapshot, at);
    let eval = evaluate_index(snapshot, at, ctx, expected, &mut recorder);
    let key = snapshot.flags.get(at).map_or("", |f| f.key());
    let trace = recorder.finish(key, &eval);
    (eval, trace)
}

impl Snapshot {
    /// Shorthand for [`explain`].
    pub fn explain(
        &self,
        key: &str,
        ctx: &Context,
        expected: ValueType,
    ) -> (Evaluation<'_>, Trace) {
        explain(self, key, ctx, expected)
    }

    /// Shorthand for [`explain_all`].
    pub fn explain_all(&self, ctx: &Context) -> Vec<(Evaluation<'_>, Trace)> {
        explain_all(self, ctx)
    }
}

// ---------------------------------------------------------------------
// The hooks, and the tracer that ignores them.
// ---------------------------------------------------------------------

/// What decided the variant, as the walk tells its tracer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decided {
    Disabled,
    Prerequisite,
    Target,
    Rule(usize),
    Default,
    Targeting,
}

impl Decided {
    /// The decision behind a serve (a rule's or the default).
    #[inline(always)]
    pub(crate) fn by(matched: Matched) -> Decided {
        match matched {
            Matched::Rule(n) => Decided::Rule(n),
            _ => Decided::Default,
        }
    }
}

/// Hooks the resolution walk calls at each decision, in order. They get
/// what the walk computed anyway and cannot change its course.
///
/// Every hook but `nested` has an empty default body, so that
/// [`NoTrace`] compiles to nothing.
pub(crate) trait Tracer: Sized {
    /// Where flagd's `fractional` picks go while targeting runs: `()` for
    /// [`NoTrace`], so evaluation has nothing to create or drop.
    type Picks: Default;

    /// The place in `picks` that `fractional` records into, if any.
    fn sink(picks: &Self::Picks) -> Option<&Cell<Vec<RolloutTrace>>>;

    /// A tracer for the resolution of the prerequisite at position `at`.
    fn nested(&self, at: usize) -> Self;

    /// Prerequisite number `n` (flag `flag`, which must give variant
    /// `want`) resolved to `got`, traced by `nested`.
    #[inline(always)]
    fn prerequisite(
        &mut self,
        _n: usize,
        _flag: &CompiledFlag,
        _want: u32,
        _got: &Resolved,
        _met: bool,
        _nested: Self,
    ) {
    }

    /// The individual targets were looked up with `key`.
    #[inline(always)]
    fn targets(&mut self, _flag: &CompiledFlag, _key: Option<&str>, _hit: Option<u32>) {}

    /// Rule `n` of the flag is about to be tried.
    #[inline(always)]
    fn rule_start(&mut self, _n: usize) {}

    /// Rule `n` of the flag was tried.
    #[inline(always)]
    fn rule_end(&mut self, _rule: &CompiledRule, _n: usize, _matched: bool) {}

    /// Membership of segment `index` is about to be checked.
    #[inline(always)]
    fn segment_start(&mut self, _index: u32) {}

    /// Rule `n` of segment `index` is about to be tried.
    #[inline(always)]
    fn segment_rule_start(&mut self, _index: u32, _n: usize) {}

    /// Rule `n` (of `clauses` clauses) of the current segment was tried.
    #[inline(always)]
    fn segment_rule_end(&mut self, _n: usize, _clauses: usize, _matched: bool) {}

    /// Membership of the current segment was decided (by its last rule
    /// tried, for [`Membership::Rule`]).
    #[inline(always)]
    fn segment_end(&mut self, _membership: Membership) {}

    /// A clause was evaluated against `actual`.
    #[inline(always)]
    fn clause(&mut self, _clause: &CompiledClause, _actual: Option<&Value>, _result: bool) {}

    /// A native rollout for `ctx` hashed to `hash`, fell in `bucket` and
    /// picked weight `index`.
    #[inline(always)]
    fn bucketed(
        &mut self,
        _rollout: &CompiledRollout,
        _ctx: &Context,
        _hash: u32,
        _bucket: u64,
        _index: usize,
    ) {
    }

    /// JsonLogic targeting returned `result` (void if it `failed`), and
    /// `fractional` picked the buckets in `picks`.
    #[inline(always)]
    fn targeting(&mut self, _result: &Value, _failed: bool, _picks: &Self::Picks) {}

    /// `decided` picked `variant` (`None`: no value).
    #[inline(always)]
    fn decided(&mut self, _flag: &CompiledFlag, _decided: Decided, _variant: Option<u32>) {}
}

/// The tracer of plain evaluation: records nothing, costs nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoTrace;

impl Tracer for NoTrace {
    type Picks = ();

    #[inline(always)]
    fn sink(_picks: &()) -> Option<&Cell<Vec<RolloutTrace>>> {
        None
    }

    #[inline(always)]
    fn nested(&self, _at: usize) -> Self {
        NoTrace
    }
}

// ---------------------------------------------------------------------
// What compilation keeps for explanations.
// ---------------------------------------------------------------------

/// What compiling drops and a trace shows, by position: flags' clauses as
/// written and rollout salts, segments' keys and clauses. Empty for flagd
/// documents (no native rules, no segments).
///
/// Built by [`crate::compile()`] alongside the compiled flags and segments,
/// so positions match by construction. Costs memory, not evaluation time:
/// about 150 bytes per flag of one rule with two clauses.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub(crate) flags: Box<[std::sync::Arc<FlagSource>]>,
    pub(crate) segments: Box<[SegmentSource]>,
}

/// A native flag's rules as written, same positions as the compiled ones.
#[derive(Debug, Default)]
pub(crate) struct FlagSource {
    pub(crate) rules: Box<[RuleSource]>,
    /// The salt of the default serve's rollout.
    pub(crate) default_salt: Option<Box<str>>,
}

#[derive(Debug)]
pub(crate) struct RuleSource {
    pub(crate) clauses: Box<[ClauseSource]>,
    /// The salt of the rule's rollout.
    pub(crate) salt: Option<Box<str>>,
}

/// A clause as written: compiling folds `notIn` into a negated `in` and
/// parses values into matchers that cannot be shown back.
#[derive(Debug)]
pub(crate) struct ClauseSource {
    pub(crate) op: Operator,
    pub(crate) negate: bool,
    /// The values as a JSON array, parsed again only to explain. A
    /// `Value` takes 72 bytes (objects keep their order): kept as values,
    /// the sources made the compile benchmark's snapshot 46 % larger
    /// (1060 to 1551 bytes per flag); kept as text, 14 % (1208). JSON text
    /// gives every value back exactly.
    pub(crate) values: Box<str>,
}

#[derive(Debug)]
pub(crate) struct SegmentSource {
    pub(crate) key: Box<str>,
    pub(crate) rules: Box<[Box<[ClauseSource]>]>,
}

impl FlagSource {
    pub(crate) fn new(def: &FlagDef) -> Self {
        let salt = |serve: &Serve| serve.rollout.as_ref()?.salt.as_deref().map(Into::into);
        FlagSource {
            rules: def
                .rules
                .iter()
                .map(|rule| RuleSource {
                    clauses: rule.clauses.iter().map(ClauseSource::new).collect(),
                    salt: salt(&rule.serve),
                })
                .collect(),
            default_salt: def.default_serve.as_ref().and_then(salt),
        }
    }
}

impl SegmentSource {
    pub(crate) fn new(key: &str, def: &SegmentDef) -> Self {
        SegmentSource {
            key: key.into(),
            rules: def
                .rules
                .iter()
                .map(|rule| rule.clauses.iter().map(ClauseSource::new).collect())
                .collect(),
        }
    }
}

impl ClauseSource {
    fn new(clause: &Clause) -> Self {
        ClauseSource {
            op: clause.op,
            negate: clause.negate,
            values: Value::from(clause.values.clone()).to_string().into(),
        }
    }

    /// The values as written (none if the text were somehow unreadable:
    /// an explanation must not fail).
    fn values(&self) -> Vec<Value> {
        serde_json::from_str(&self.values).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------
// The recording tracer.
// ---------------------------------------------------------------------

/// Turns the walk's hooks into a [`Trace`].
///
/// Rules and segments nest (a segment rule's clause may test another
/// segment), so open rules and segments are kept on a stack: a clause
/// lands in the innermost open rule, a segment's verdict in the clause
/// that asked for it.
pub(crate) struct Recorder<'s> {
    snapshot: &'s Snapshot,
    /// The position of the flag being resolved, for its sources.
    at: usize,
    steps: Vec<Step>,
    open: Vec<Open<'s>>,
    /// The last rollout's pick, until the serve step that used it.
    rollout: Option<RolloutTrace>,
}

enum Open<'s> {
    /// A rule (of the flag or of a segment) being tried.
    Rule {
        source: &'s [ClauseSource],
        clauses: Vec<ClauseTrace>,
        /// Segments checked for the clause being evaluated.
        segments: Vec<SegmentTrace>,
    },
    /// A segment whose membership is being checked.
    Segment { index: u32, rules: Vec<RuleTrace> },
}

impl<'s> Recorder<'s> {
    fn new(snapshot: &'s Snapshot, at: usize) -> Self {
        Recorder {
            snapshot,
            at,
            steps: Vec::new(),
            open: Vec::new(),
            rollout: None,
        }
    }

    /// The trace, closed with the evaluation's error if it has one.
    fn finish(mut self, key: &str, eval: &Evaluation<'_>) -> Trace {
        if let Some(e) = &eval.error {
            self.steps.push(Step::Error {
                code: e.code.as_str(),
                message: e.details.to_string(),
            });
        }
        Trace {
            flag: key.to_owned(),
            steps: self.steps,
        }
    }

    fn flag_rule_source(&self, n: usize) -> Option<&'s RuleSource> {
        self.snapshot.sources.flags.get(self.at)?.rules.get(n)
    }

    /// Closes the innermost open rule.
    fn close_rule(&mut self, n: usize, count: usize, matched: bool) -> Option<RuleTrace> {
        let Some(Open::Rule { clauses, .. }) = self.open.pop() else {
            return None;
        };
        Some(RuleTrace {
            index: n,
            name: None,
            not_evaluated: count.saturating_sub(clauses.len()),
            clauses,
            matched,
        })
    }
}

fn variant_key(flag: &CompiledFlag, v: Option<u32>) -> Option<String> {
    v.and_then(|v| flag.variants.get(v as usize))
        .map(|v| v.key.to_string())
}

fn dotted(path: &Path) -> String {
    let keys: Vec<&str> = path.segments.iter().map(|s| &*s.key).collect();
    keys.join(".")
}

/// The operator a compiled clause applies, for a clause whose source is
/// missing (no compiled document has one: this only keeps traces total).
fn operator_of(clause: &CompiledClause) -> Operator {
    let by_cmp = |cmp: Cmp, ops: [Operator; 5]| match cmp {
        Cmp::Eq => ops[0],
        Cmp::Lt => ops[1],
        Cmp::Lte => ops[2],
        Cmp::Gt => ops[3],
        Cmp::Gte => ops[4],
    };
    match &clause.matcher {
        Matcher::In(_) => Operator::In,
        Matcher::StartsWith(_) => Operator::StartsWith,
        Matcher::EndsWith(_) => Operator::EndsWith,
        Matcher::Contains(_) => Operator::Contains,
        Matcher::Matches(_) => Operator::Matches,
        Matcher::Number(cmp, _) => by_cmp(
            *cmp,
            [
                Operator::In,
                Operator::Lt,
                Operator::Lte,
                Operator::Gt,
                Operator::Gte,
            ],
        ),
        Matcher::Semver(cmp, _) => by_cmp(
            *cmp,
            [
                Operator::SemverEq,
                Operator::SemverLt,
                Operator::SemverLte,
                Operator::SemverGt,
                Operator::SemverGte,
            ],
        ),
        Matcher::Before(_) => Operator::Before,
        Matcher::After(_) => Operator::After,
        Matcher::Exists => Operator::Exists,
        Matcher::InSegment(_) => Operator::InSegment,
    }
}

impl Tracer for Recorder<'_> {
    type Picks = Cell<Vec<RolloutTrace>>;

    fn sink(picks: &Self::Picks) -> Option<&Cell<Vec<RolloutTrace>>> {
        Some(picks)
    }

    fn nested(&self, at: usize) -> Self {
        Recorder::new(self.snapshot, at)
    }

    fn prerequisite(
        &mut self,
        n: usize,
        flag: &CompiledFlag,
        want: u32,
        got: &Resolved,
        met: bool,
        nested: Self,
    ) {
        let mut steps = nested.steps;
        if let Some(e) = &got.error {
            steps.push(Step::Error {
                code: e.code.as_str(),
                message: e.details.to_string(),
            });
        }
        self.steps.push(Step::Prerequisite {
            index: n,
            flag: flag.key.to_string(),
            required_variant: variant_key(flag, Some(want)).unwrap_or_default(),
            enabled: flag.enabled,
            actual_variant: variant_key(flag, got.variant),
            met,
            steps,
        });
    }

    fn targets(&mut self, flag: &CompiledFlag, key: Option<&str>, hit: Option<u32>) {
        self.steps.push(Step::Targets {
            targeting_key: key.map(str::to_owned),
            variant: variant_key(flag, hit),
        });
    }

    fn rule_start(&mut self, n: usize) {
        let source = self.flag_rule_source(n).map_or(&[][..], |r| &r.clauses);
        self.open.push(Open::Rule {
            source,
            clauses: Vec::new(),
            segments: Vec::new(),
        });
    }

    fn rule_end(&mut self, rule: &CompiledRule, n: usize, matched: bool) {
        if let Some(mut trace) = self.close_rule(n, rule.clauses.len(), matched) {
            trace.name = rule.name.as_deref().map(str::to_owned);
            self.steps.push(Step::Rule(trace));
        }
    }

    fn segment_start(&mut self, index: u32) {
        self.open.push(Open::Segment {
            index,
            rules: Vec::new(),
        });
    }

    fn segment_rule_start(&mut self, index: u32, n: usize) {
        let source = self
            .snapshot
            .sources
            .segments
            .get(index as usize)
            .and_then(|s| s.rules.get(n))
            .map_or(&[][..], |r| &r[..]);
        self.open.push(Open::Rule {
            source,
            clauses: Vec::new(),
            segments: Vec::new(),
        });
    }

    fn segment_rule_end(&mut self, n: usize, clauses: usize, matched: bool) {
        let Some(trace) = self.close_rule(n, clauses, matched) else {
            return;
        };
        if let Some(Open::Segment { rules, .. }) = self.open.last_mut() {
            rules.push(trace);
        }
    }

    fn segment_end(&mut self, membership: Membership) {
        let Some(Open::Segment { index, rules }) = self.open.pop() else {
            return;
        };
        let segment = self
            .snapshot
            .sources
            .segments
            .get(index as usize)
            .map_or_else(|| format!("#{index}"), |s| s.key.to_string());
        if let Some(Open::Rule { segments, .. }) = self.open.last_mut() {
            segments.push(SegmentTrace {
                segment,
                membership,
                rules,
            });
        }
    }

    fn clause(&mut self, clause: &CompiledClause, actual: Option<&Value>, result: bool) {
        let Some(Open::Rule {
            source,
            clauses,
            segments,
        }) = self.open.last_mut()
        else {
            return;
        };
        let source = source.get(clauses.len());
        let segment_clause = matches!(clause.matcher, Matcher::InSegment(_));
        clauses.push(ClauseTrace {
            attribute: (!segment_clause).then(|| dotted(&clause.path)),
            operator: source.map_or_else(|| operator_of(clause), |s| s.op),
            negate: source.map_or(clause.negate, |s| s.negate),
            values: source.map_or_else(Vec::new, ClauseSource::values),
            actual: actual.cloned(),
            segments: std::mem::take(segments),
            result,
        });
    }

    fn bucketed(
        &mut self,
        rollout: &CompiledRollout,
        ctx: &Context,
        hash: u32,
        bucket: u64,
        index: usize,
    ) {
        let Some(flag) = self.snapshot.flags.get(self.at) else {
            return;
        };
        let (percent, weights, variant) = RolloutTrace::walk(
            bucket,
            rollout.total,
            rollout
                .variants
                .iter()
                .zip(rollout.weights.iter())
                .map(|(&v, &w)| {
                    (
                        variant_key(flag, Some(v)).map_or(Value::Null, Value::String),
                        w,
                    )
                }),
            index,
        );
        self.rollout = Some(RolloutTrace {
            bucket_by: rollout
                .bucket_by
                .as_ref()
                .map_or_else(|| TARGETING_KEY.to_owned(), dotted),
            // What the rollout read to hash (it hashed only a string or
            // an integer; anything else failed before a bucket was taken).
            value: match &rollout.bucket_by {
                None => ctx.targeting_key().map_or(Value::Null, Value::from),
                Some(path) => ctx.lookup(path).cloned().unwrap_or(Value::Null),
            },
            // Filled in by the serve step, which knows whose rollout it is.
            salt: None,
            hash,
            bucket,
            total: rollout.total,
            percent,
            weights,
            variant,
        });
    }

    fn targeting(&mut self, result: &Value, failed: bool, picks: &Self::Picks) {
        self.steps.push(Step::Targeting {
            result: result.clone(),
            failed,
            fractional: picks.take(),
        });
    }

    fn decided(&mut self, flag: &CompiledFlag, decided: Decided, variant: Option<u32>) {
        let (by, rule) = match decided {
            Decided::Disabled => {
                self.steps.push(Step::Disabled);
                (ServedBy::OffVariant, None)
            }
            Decided::Prerequisite => (ServedBy::OffVariant, None),
            Decided::Target => (ServedBy::Target, None),
            Decided::Rule(n) => (ServedBy::Rule, Some(n)),
            Decided::Default => (ServedBy::Default, None),
            Decided::Targeting => (ServedBy::Targeting, None),
        };
        let rollout = self.rollout.take().map(|mut r| {
            let source = self.snapshot.sources.flags.get(self.at);
            let salt = match rule {
                Some(n) => source.and_then(|s| s.rules.get(n)?.salt.as_deref()),
                None => source.and_then(|s| s.default_salt.as_deref()),
            };
            r.salt = Some(salt.unwrap_or(&flag.key).to_owned());
            r
        });
        self.steps.push(Step::Serve {
            by,
            rule,
            variant: variant_key(flag, variant),
            rollout,
        });
    }
}

#[cfg(test)]
mod tests;
