//! Validation and compilation of native documents, in one pass.
//!
//! The compiler walks the whole document, records every problem with its
//! place and keeps going, so a user sees all errors at once. Only a
//! document without problems becomes a [`Snapshot`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{Map, Value};

use crate::bucket::Prefix;
use crate::compare::{parse_date, parse_semver};
use crate::context::{Path, json_type};
use crate::error::{Problem, Problems};
use crate::explain::{FlagSource, SegmentSource, Sources};
use crate::keyed::Keyed;
use crate::model::{Clause, Document, FlagDef, FlagType, Operator, Rollout, Serve};
use crate::pointer::Pointer;
use crate::rules::{Cmp, CompiledClause, Matcher, ValueSet};
use crate::snapshot::{
    CompiledFlag, CompiledRollout, CompiledRule, CompiledSegment, CompiledServe, FlagdLogic, Logic,
    NativeLogic, Snapshot, Targeting, Variant,
};

/// A compiled snapshot and the problems that did not prevent it.
#[derive(Debug)]
pub struct Compiled {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Problems that do not stop the document from being served, e.g.
    /// flagd targeting that cannot be parsed (its evaluations report
    /// PARSE_ERROR, as flagd does).
    pub warnings: Vec<Problem>,
}

/// Longest accepted flag, segment or variant key.
pub const MAX_KEY_LEN: usize = 256;
/// Largest compiled size of one regular expression.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Largest compiled size of all regular expressions of one document
/// together: each costs memory for as long as the snapshot is served.
pub const MAX_REGEX_BYTES: usize = 16 << 20;
/// Longest chain of prerequisites (a flag, its prerequisite, that one's
/// prerequisite, …): each link is evaluated for every evaluation of the
/// flags above it, so long chains make every bulk evaluation slow.
pub const MAX_PREREQUISITE_DEPTH: usize = 16;
/// Integers beyond this magnitude cannot be represented exactly as JSON
/// numbers by most clients (JavaScript's doubles).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;
/// Weights are percentages with up to three decimals: integer units of
/// 1/1000 %, 100 000 in all.
pub(crate) const WEIGHT_SCALE: f64 = 1000.0;
const WEIGHT_TOTAL: u64 = 100_000;

/// Validates a native document; every problem, or none.
pub fn validate(doc: &Document) -> Vec<Problem> {
    match compile(doc) {
        Ok(_) => Vec::new(),
        Err(p) => p.0,
    }
}

/// Compiles a document the way flagd serves a file: a flag with problems
/// does not take the others down. It stays in the snapshot, every
/// evaluation of it gives PARSE_ERROR, and its problems are returned as
/// warnings. Problems outside flags (segments, the document itself) still
/// refuse the document, as [`compile`] does.
pub fn compile_serving(doc: &Document) -> Result<Compiled, Problems> {
    let refuse = || match compile(doc) {
        Err(p) => p,
        Ok(_) => Problems(Vec::new()),
    };
    let mut current = doc.clone();
    // Flag key to its problems, in the order they were found.
    let mut broken: Vec<(String, Vec<Problem>)> = Vec::new();
    // Each round breaks or drops at least one more flag.
    for _ in 0..=2 * doc.flags.len() + 1 {
        let problems = match compile(&current) {
            Ok(mut compiled) => {
                for (key, problems) in &broken {
                    if let Some(at) = compiled.snapshot.position(key) {
                        let why: Vec<String> = problems.iter().map(ToString::to_string).collect();
                        // Compiled just now, not shared with anything.
                        if let Some(flag) = Arc::get_mut(&mut compiled.snapshot.flags[at]) {
                            flag.logic = Logic::Broken(why.join("; ").into());
                        }
                    }
                }
                let mut warnings: Vec<Problem> = broken.into_iter().flat_map(|(_, p)| p).collect();
                warnings.append(&mut compiled.warnings);
                compiled.warnings = warnings;
                return Ok(compiled);
            }
            Err(p) => p.0,
        };
        for p in problems {
            let Some(key) = flag_of(&p.pointer).filter(|k| doc.flags.get(k).is_some()) else {
                return Err(refuse());
            };
            match broken.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) if list.contains(&p) => {
                    // Its placeholder still has problems (e.g. its key is
                    // invalid): leave the flag out altogether.
                    let flags = std::mem::take(&mut current.flags);
                    current.flags = Keyed::from_pairs(
                        flags
                            .iter()
                            .filter(|(k, _)| *k != key)
                            .map(|(k, f)| (k.to_owned(), f.clone()))
                            .collect(),
                    );
                }
                Some((_, list)) => list.push(p),
                None => broken.push((key, vec![p])),
            }
        }
        // Replace each broken flag by a placeholder that compiles: its
        // variants (when they are fine, so prerequisites on it still
        // compile), nothing else.
        for (key, problems) in &broken {
            let at = Pointer::root().at(["flags", key]);
            let variants = at.push("variants");
            let variants_ok = !problems.iter().any(|p| {
                p.pointer.as_str().starts_with(variants.as_str()) || p.pointer == at.push("type")
            });
            if let (Some(def), Some(orig)) = (current.flags.get_mut(key), doc.flags.get(key)) {
                *def = FlagDef {
                    description: String::new(),
                    tags: Vec::new(),
                    value_type: if variants_ok { orig.value_type } else { None },
                    kind: orig.kind,
                    variants: if variants_ok {
                        orig.variants.clone()
                    } else {
                        Keyed::from_pairs(vec![("invalid".to_owned(), Value::Bool(false))])
                    },
                    enabled: true,
                    off_variant: None,
                    default_serve: None,
                    targeting: None,
                    targets: Keyed::default(),
                    rules: Vec::new(),
                    prerequisites: Vec::new(),
                    metadata: Map::new(),
                };
            }
        }
    }
    Err(refuse())
}

/// The flag a pointer is inside of (`/flags/<key>/…`), unescaped.
fn flag_of(pointer: &Pointer) -> Option<String> {
    let rest = pointer.as_str().strip_prefix("/flags/")?;
    let token = rest.split('/').next()?;
    Some(token.replace("~1", "/").replace("~0", "~"))
}

/// Validates and compiles a native document into a snapshot.
pub fn compile(doc: &Document) -> Result<Compiled, Problems> {
    compile_until(doc, &AtomicBool::new(false))
}

/// As [`compile`], but gives up as soon as `stop` is set (checked before
/// each segment and flag), with a single problem saying so. The caller
/// sets it from elsewhere, e.g. when a deadline passes: the engine itself
/// reads no clock.
pub fn compile_until(doc: &Document, stop: &AtomicBool) -> Result<Compiled, Problems> {
    compile_with(doc, None, stop)
}

/// As [`compile_until`], reusing what `prior_snapshot` (what [`compile`]
/// made of `prior`) compiled for the flags that did not change: a flag is
/// compiled again only when its definition is not the very one `prior`
/// holds (the same `Arc`, see [`Keyed::shared`]), or when it refers by
/// position to flags or segments and those moved, or its prerequisites
/// changed. Segments and the regular-expression budget are checked again;
/// keys, cycles and chain depth too, unless the prior proves them (the
/// same keys in the same order; no recompiled flag with prerequisites,
/// then or now). The result is the snapshot [`compile`] would make of
/// `doc`.
pub fn compile_reusing(
    doc: &Document,
    prior: &Document,
    prior_snapshot: &Snapshot,
    stop: &AtomicBool,
) -> Result<Compiled, Problems> {
    compile_with(doc, Prior::new(doc, prior, prior_snapshot), stop)
}

/// A previous compilation, and what changed since.
struct Prior<'a> {
    snapshot: &'a Snapshot,
    /// Flag and segment keys are the same, in the same order: positions
    /// held by compiled flags still point at the same things.
    same_layout: bool,
    /// By position in the new document: the flag is new or its
    /// definition is not the prior one.
    changed: Vec<bool>,
}

/// Whether two maps have the same keys in the same order.
fn same_keys<T>(a: &Keyed<T>, b: &Keyed<T>) -> bool {
    a.len() == b.len() && a.keys().zip(b.keys()).all(|(x, y)| x == y)
}

impl<'a> Prior<'a> {
    fn new(doc: &Document, prior: &'a Document, snapshot: &'a Snapshot) -> Option<Self> {
        // A snapshot that is not the strict compilation of `prior` (e.g.
        // one served with broken flags) cannot stand in for it.
        if snapshot.flags.len() != prior.flags.len() || doc.metadata != prior.metadata {
            return None;
        }
        let same_layout =
            same_keys(&doc.flags, &prior.flags) && same_keys(&doc.segments, &prior.segments);
        let changed = doc
            .flags
            .shared()
            .iter()
            .enumerate()
            .map(|(i, (key, def))| {
                let at = if same_layout {
                    Some(i)
                } else {
                    snapshot.position(key)
                };
                !at.is_some_and(|j| Arc::ptr_eq(&prior.flags.shared()[j].1, def))
            })
            .collect();
        Some(Prior {
            snapshot,
            same_layout,
            changed,
        })
    }

    /// The prior compiled flag and explanation source at new position
    /// `i`, when they can be reused as they are.
    fn reusable(
        &self,
        i: usize,
        key: &str,
    ) -> Option<(Arc<CompiledFlag>, Option<Arc<FlagSource>>)> {
        if self.changed[i] {
            return None;
        }
        let j = if self.same_layout {
            i
        } else {
            self.snapshot.position(key)?
        };
        let flag = self.snapshot.flags.get(j)?;
        if flag.is_broken() {
            return None;
        }
        if flag.positional
            && !(self.same_layout
                && flag
                    .prerequisites
                    .iter()
                    .all(|&(p, _)| !self.changed[p as usize]))
        {
            return None;
        }
        Some((flag.clone(), self.snapshot.sources.flags.get(j).cloned()))
    }
}

fn compile_with(
    doc: &Document,
    prior: Option<Prior<'_>>,
    stop: &AtomicBool,
) -> Result<Compiled, Problems> {
    let stopped = || {
        Problems(vec![Problem {
            pointer: Pointer::root(),
            message: "compilation stopped before the end: it took longer than allowed".into(),
        }])
    };
    let mut c = Compiler::default();
    let root = Pointer::root();

    let mut segment_index: FxHashMap<&str, u32> =
        FxHashMap::with_capacity_and_hasher(doc.segments.len(), Default::default());
    for (i, (key, _)) in doc.segments.iter().enumerate() {
        c.check_key("segments", key, "segment");
        if segment_index.insert(key, i as u32).is_some() {
            c.problem(
                &root.at(["segments", key]),
                format!("duplicate segment key `{key}`"),
            );
        }
    }
    // With the prior's keys in the prior's order, the prior's snapshot
    // answers where a flag is, and its keys passed these checks already.
    let same_layout = prior.as_ref().is_some_and(|p| p.same_layout);
    let mut flag_index: FxHashMap<&str, u32> = FxHashMap::default();
    for (i, (key, _)) in doc.flags.iter().enumerate().filter(|_| !same_layout) {
        // A key the prior document had passed this check there.
        if prior.as_ref().is_none_or(|p| p.changed[i]) {
            c.check_key("flags", key, "flag");
        }
        if flag_index.insert(key, i as u32).is_some() {
            c.problem(
                &root.at(["flags", key]),
                format!("duplicate flag key `{key}`"),
            );
        }
    }

    let mut segments = Vec::with_capacity(doc.segments.len());
    let mut segment_sources = Vec::with_capacity(doc.segments.len());
    let mut segment_edges: Vec<Vec<u32>> = Vec::with_capacity(doc.segments.len());
    for (key, seg) in doc.segments.iter() {
        if stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        let at = root.at(["segments", key]);
        let mut refs = Vec::new();
        let mut rules = Vec::with_capacity(seg.rules.len());
        for (r, rule) in seg.rules.iter().enumerate() {
            let at = at.at(["rules".to_string(), r.to_string()]);
            rules.push(c.clauses(&at, &rule.clauses, &segment_index, &mut refs));
        }
        for (field, keys) in [("included", &seg.included), ("excluded", &seg.excluded)] {
            for (n, k) in keys.iter().enumerate() {
                if k.is_empty() {
                    c.problem(
                        &at.at([field.to_string(), n.to_string()]),
                        "targeting key must not be empty",
                    );
                }
            }
        }
        segment_edges.push(refs);
        segment_sources.push(SegmentSource::new(key, seg));
        segments.push(CompiledSegment {
            included: seg.included.iter().map(|k| k.as_str().into()).collect(),
            excluded: seg.excluded.iter().map(|k| k.as_str().into()).collect(),
            rules: rules.into_boxed_slice(),
        });
    }
    let segment_keys: Vec<&str> = doc.segments.keys().collect();
    for cycle in find_cycles(&segment_edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| segment_keys[i as usize]).collect();
        c.problem(
            &root.at(["segments", names[0]]),
            format!(
                "segments reference each other in a cycle: {}",
                names.join(" -> ")
            ),
        );
    }

    let mut flags = Vec::with_capacity(doc.flags.len());
    let mut flag_sources = Vec::with_capacity(doc.flags.len());
    let position = |key: &str| -> Option<u32> {
        match &prior {
            Some(p) if same_layout => p.snapshot.position(key).map(|i| i as u32),
            _ => flag_index.get(key).copied(),
        }
    };
    // Whether any flag's prerequisites may differ from the prior's: if not,
    // the prior's graph had no cycle and no chain too deep, and neither
    // has this one.
    let mut edges_changed = !same_layout;
    for (i, (key, def)) in doc.flags.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        if let Some((flag, source)) = prior.as_ref().and_then(|p| p.reusable(i, key)) {
            c.regex_bytes += flag.regex_bytes;
            flags.push(flag);
            flag_sources.push(source.unwrap_or_else(|| Arc::new(FlagSource::new(def))));
            continue;
        }
        let at = root.at(["flags", key]);
        let (flag, edges) = c.flag(&at, key, def, doc, &position, &segment_index);
        edges_changed = edges_changed
            || !edges.is_empty()
            || prior
                .as_ref()
                .and_then(|p| p.snapshot.flags.get(i))
                .is_none_or(|f| !f.prerequisites.is_empty());
        flags.push(Arc::new(flag));
        flag_sources.push(Arc::new(FlagSource::new(def)));
    }
    // Reused flags add their expressions without being checked one by
    // one: the budget is checked for the whole document here.
    if c.regex_bytes > MAX_REGEX_BYTES && c.problems.is_empty() {
        c.problem(
            &root,
            format!(
                "the document's regular expressions take {} KiB compiled; the limit is {} KiB",
                c.regex_bytes >> 10,
                MAX_REGEX_BYTES >> 10
            ),
        );
    }
    if edges_changed {
        check_prerequisite_graph(&mut c, doc, &flags);
    }

    if !c.problems.is_empty() {
        return Err(Problems(c.problems));
    }
    let index = match &prior {
        Some(p) if same_layout => Some(p.snapshot.index.clone()),
        _ => None,
    };
    Ok(Compiled {
        snapshot: Snapshot::new(
            flags,
            segments,
            doc.bucketing,
            Sources {
                flags: flag_sources.into_boxed_slice(),
                segments: segment_sources.into_boxed_slice(),
            },
            index,
        ),
        warnings: Vec::new(),
    })
}

/// Prerequisite cycles, and chains deeper than allowed (a compiled flag's
/// prerequisites are its edges).
fn check_prerequisite_graph(c: &mut Compiler, doc: &Document, flags: &[Arc<CompiledFlag>]) {
    let root = Pointer::root();
    let prereq_edges: Vec<Vec<u32>> = flags
        .iter()
        .map(|f| f.prerequisites.iter().map(|&(p, _)| p).collect())
        .collect();
    let flag_keys: Vec<&str> = doc.flags.keys().collect();
    let cycles = find_cycles(&prereq_edges);
    for cycle in &cycles {
        let names: Vec<&str> = cycle.iter().map(|&i| flag_keys[i as usize]).collect();
        c.problem(
            &root.at(["flags", names[0], "prerequisites"]),
            format!("prerequisites form a cycle: {}", names.join(" -> ")),
        );
    }
    if cycles.is_empty() {
        let depths = chain_depths(&prereq_edges);
        let mut is_prerequisite = vec![false; prereq_edges.len()];
        for to in prereq_edges.iter().flatten() {
            is_prerequisite[*to as usize] = true;
        }
        // One problem per chain: at the flag on top of it.
        for (i, depth) in depths.iter().enumerate() {
            if *depth > MAX_PREREQUISITE_DEPTH && !is_prerequisite[i] {
                c.problem(
                    &root.at(["flags", flag_keys[i], "prerequisites"]),
                    format!(
                        "prerequisites of `{}` form a chain {depth} flags deep; the limit is {MAX_PREREQUISITE_DEPTH}",
                        flag_keys[i]
                    ),
                );
            }
        }
    }
}

/// Collects problems while walking a document.
#[derive(Default)]
pub(crate) struct Compiler {
    pub(crate) problems: Vec<Problem>,
    /// Compiled size of the document's regular expressions so far.
    regex_bytes: usize,
}

impl Compiler {
    pub(crate) fn problem(&mut self, at: &Pointer, message: impl Into<String>) {
        self.problems.push(Problem {
            pointer: at.clone(),
            message: message.into(),
        });
    }

    /// Keys start with a letter or digit and use letters, digits, `_`, `-`,
    /// `.` and `:`; they are used in URLs and file names.
    /// Checks a flag or segment key; `section` is `flags` or `segments`.
    /// The place is written out only for a problem (this runs for every
    /// key of every document).
    fn check_key(&mut self, section: &str, key: &str, what: &str) {
        let message = if key.is_empty() {
            format!("{what} key must not be empty")
        } else if key.len() > MAX_KEY_LEN {
            format!("{what} key is longer than {MAX_KEY_LEN} bytes")
        } else if !key.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            format!(
                "invalid {what} key `{key}`: use letters, digits, `_`, `-`, `.` and `:`, starting with a letter or digit"
            )
        } else {
            return;
        };
        self.problem(&Pointer::root().at([section, key]), message);
    }

    /// Checks variant keys and that all values share one type; returns the
    /// type (declared or inferred) and the compiled variants.
    pub(crate) fn variants<'v>(
        &mut self,
        at: &Pointer,
        declared: Option<FlagType>,
        variants: impl ExactSizeIterator<Item = (&'v str, &'v Value)>,
    ) -> (FlagType, Vec<Variant>) {
        let mut out = Vec::with_capacity(variants.len());
        let mut ty = declared;
        if variants.len() == 0 {
            self.problem(at, "a flag needs at least one variant");
        }
        for (key, value) in variants {
            let at = at.push(key);
            if key.is_empty() {
                self.problem(&at, "variant key must not be empty");
            } else if key.len() > MAX_KEY_LEN {
                self.problem(
                    &at,
                    format!("variant key is longer than {MAX_KEY_LEN} bytes"),
                );
            }
            match (FlagType::of(value), ty) {
                (None, _) => self.problem(
                    &at,
                    format!(
                        "variant value must be a boolean, string, number, object or array, found {}",
                        json_type(value)
                    ),
                ),
                (Some(found), Some(want)) if found != want => self.problem(
                    &at,
                    format!(
                        "variant value must be of the flag's type {}, found {}",
                        want.name(),
                        found.name()
                    ),
                ),
                (Some(found), None) => ty = Some(found),
                _ => {}
            }
            self.exact_numbers(&at, value);
            out.push(Variant {
                key: key.into(),
                value: value.clone(),
            });
        }
        (ty.unwrap_or(FlagType::Boolean), out)
    }

    /// Refuses integers that JSON clients cannot hold exactly: a literal
    /// like `123456789012345678901234567890` would otherwise be served as
    /// `1.2345678901234568e29`, a different value from the one written.
    fn exact_numbers(&mut self, at: &Pointer, value: &Value) {
        match value {
            Value::Number(n) => {
                let inexact = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => u > MAX_EXACT_INTEGER as u64,
                    (None, Some(i), _) => i.unsigned_abs() > MAX_EXACT_INTEGER as u64,
                    (None, None, Some(f)) => f.fract() == 0.0 && f.abs() > MAX_EXACT_INTEGER,
                    _ => false,
                };
                if inexact {
                    self.problem(
                        at,
                        format!(
                            "the number {n} cannot be kept exactly: integers beyond ±2^53 (9007199254740992) lose precision; use a string"
                        ),
                    );
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.exact_numbers(&at.push(i), v);
                }
            }
            Value::Object(fields) => {
                for (k, v) in fields {
                    self.exact_numbers(&at.push(k), v);
                }
            }
            _ => {}
        }
    }

    /// Overlays flag metadata on document metadata; values must be scalars.
    pub(crate) fn metadata(
        &mut self,
        at: &Pointer,
        base: &Map<String, Value>,
        own: &Map<String, Value>,
    ) -> Map<String, Value> {
        for (k, v) in own {
            if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                self.problem(
                    &at.push(k),
                    format!(
                        "metadata values must be strings, numbers or booleans, found {}",
                        json_type(v)
                    ),
                );
            }
        }
        let mut merged = base.clone();
        for (k, v) in own {
            merged.insert(k.clone(), v.clone());
        }
        merged
    }

    fn flag(
        &mut self,
        at: &Pointer,
        key: &str,
        def: &FlagDef,
        doc: &Document,
        flag_position: &dyn Fn(&str) -> Option<u32>,
        segment_index: &FxHashMap<&str, u32>,
    ) -> (CompiledFlag, Vec<u32>) {
        let regex_before = self.regex_bytes;
        let mut segment_refs = Vec::new();
        let (value_type, variants) =
            self.variants(&at.push("variants"), def.value_type, def.variants.iter());
        let variant = |name: &str| def.variants.position(name).map(|i| i as u32);

        for (n, tag) in def.tags.iter().enumerate() {
            if tag.trim().is_empty() {
                self.problem(
                    &at.at(["tags".to_string(), n.to_string()]),
                    "tags must not be empty",
                );
            }
        }

        let off_variant = def.off_variant.as_deref().and_then(|name| {
            let v = variant(name);
            if v.is_none() {
                self.problem(&at.push("offVariant"), format!("unknown variant `{name}`"));
            }
            v
        });

        let mut targets: FxHashMap<Box<str>, u32> = FxHashMap::default();
        let mut target_owner: FxHashMap<&str, &str> = FxHashMap::default();
        for (name, keys) in def.targets.iter() {
            let at = at.at(["targets", name]);
            let Some(v) = variant(name) else {
                self.problem(&at, format!("unknown variant `{name}`"));
                continue;
            };
            for (n, k) in keys.iter().enumerate() {
                let at = at.push(n);
                if k.is_empty() {
                    self.problem(&at, "targeting key must not be empty");
                } else if let Some(other) = target_owner.insert(k, name) {
                    self.problem(
                        &at,
                        format!("targeting key `{k}` is already targeted by variant `{other}`"),
                    );
                }
                targets.insert(k.as_str().into(), v);
            }
        }

        let mut rules = Vec::with_capacity(def.rules.len());
        for (n, rule) in def.rules.iter().enumerate() {
            let at = at.at(["rules".to_string(), n.to_string()]);
            let clauses = self.clauses(&at, &rule.clauses, segment_index, &mut segment_refs);
            let serve = self.serve(&at.push("serve"), key, &rule.serve, &variant);
            rules.push(CompiledRule {
                name: rule.name.as_deref().map(Into::into),
                clauses,
                serve,
            });
        }

        let logic = match &def.targeting {
            Some(targeting) => {
                if !def.rules.is_empty() {
                    self.problem(
                        &at.push("rules"),
                        "a flag with `targeting` cannot also have rules",
                    );
                }
                if !def.targets.is_empty() {
                    self.problem(
                        &at.push("targets"),
                        "a flag with `targeting` cannot also have targets",
                    );
                }
                let default = match &def.default_serve {
                    None => None,
                    Some(Serve {
                        variant: Some(name),
                        rollout: None,
                    }) => {
                        let v = variant(name);
                        if v.is_none() {
                            self.problem(
                                &at.at(["defaultServe", "variant"]),
                                format!("unknown variant `{name}`"),
                            );
                        }
                        v
                    }
                    Some(_) => {
                        self.problem(
                            &at.push("defaultServe"),
                            "with `targeting`, `defaultServe` must name a variant",
                        );
                        None
                    }
                };
                let targeting = match targeting {
                    Value::Null => Targeting::None,
                    Value::Object(m) if m.is_empty() => Targeting::None,
                    t => match crate::flagd::logic::compile(t, key) {
                        Ok(expr) => Targeting::Expr(expr),
                        Err(why) => {
                            self.problem(&at.push("targeting"), why);
                            Targeting::None
                        }
                    },
                };
                Logic::Flagd(FlagdLogic { default, targeting })
            }
            None => {
                let default = def
                    .default_serve
                    .as_ref()
                    .map(|serve| self.serve(&at.push("defaultServe"), key, serve, &variant));
                let is_static =
                    targets.is_empty() && rules.is_empty() && def.prerequisites.is_empty();
                Logic::Native(NativeLogic {
                    targets,
                    rules: rules.into_boxed_slice(),
                    default,
                    is_static,
                })
            }
        };
        let mut prerequisites = Vec::with_capacity(def.prerequisites.len());
        let mut edges = Vec::new();
        for (n, pre) in def.prerequisites.iter().enumerate() {
            let at = at.at(["prerequisites".to_string(), n.to_string()]);
            if pre.flag == key {
                self.problem(&at.push("flag"), "a flag cannot be its own prerequisite");
                continue;
            }
            let Some((fi, other)) = flag_position(&pre.flag).and_then(|fi| {
                let (_, other) = doc.flags.shared().get(fi as usize)?;
                Some((fi, other))
            }) else {
                self.problem(&at.push("flag"), format!("unknown flag `{}`", pre.flag));
                continue;
            };
            let Some(vi) = other.variants.position(&pre.variant) else {
                self.problem(
                    &at.push("variant"),
                    format!("flag `{}` has no variant `{}`", pre.flag, pre.variant),
                );
                continue;
            };
            edges.push(fi);
            prerequisites.push((fi, vi as u32));
        }

        let metadata = self.metadata(&at.push("metadata"), &doc.metadata, &def.metadata);
        let flag = CompiledFlag {
            key: key.into(),
            value_type,
            kind: def.kind,
            variants: variants.into_boxed_slice(),
            enabled: def.enabled,
            off_variant,
            positional: !prerequisites.is_empty() || !segment_refs.is_empty(),
            prerequisites: prerequisites.into_boxed_slice(),
            logic,
            metadata,
            regex_bytes: self.regex_bytes - regex_before,
        };
        (flag, edges)
    }

    fn serve(
        &mut self,
        at: &Pointer,
        flag_key: &str,
        serve: &Serve,
        variant: &dyn Fn(&str) -> Option<u32>,
    ) -> CompiledServe {
        match (&serve.variant, &serve.rollout) {
            (Some(name), None) => match variant(name) {
                Some(v) => CompiledServe::Variant(v),
                None => {
                    self.problem(&at.push("variant"), format!("unknown variant `{name}`"));
                    CompiledServe::Variant(0)
                }
            },
            (None, Some(r)) => {
                CompiledServe::Rollout(self.rollout(&at.push("rollout"), flag_key, r, variant))
            }
            _ => {
                self.problem(at, "serve exactly one of `variant` or `rollout`");
                CompiledServe::Variant(0)
            }
        }
    }

    fn rollout(
        &mut self,
        at: &Pointer,
        flag_key: &str,
        r: &Rollout,
        variant: &dyn Fn(&str) -> Option<u32>,
    ) -> CompiledRollout {
        let mut variants = Vec::with_capacity(r.weights.len());
        let mut weights = Vec::with_capacity(r.weights.len());
        let wat = at.push("weights");
        if r.weights.is_empty() {
            self.problem(&wat, "a rollout needs at least one weighted variant");
        }
        let mut total: u64 = 0;
        for (name, &w) in r.weights.iter() {
            let at = wat.push(name);
            let v = variant(name);
            if v.is_none() {
                self.problem(&at, format!("unknown variant `{name}`"));
            }
            let scaled = w * WEIGHT_SCALE;
            if !w.is_finite() || !(0.0..=100.0).contains(&w) {
                self.problem(
                    &at,
                    format!("weight must be a percentage between 0 and 100, found {w}"),
                );
                continue;
            }
            if (scaled - scaled.round()).abs() > 1e-6 {
                self.problem(&at, format!("weight {w} has more than three decimals"));
                continue;
            }
            let units = scaled.round() as u64;
            total += units;
            variants.push(v.unwrap_or(0));
            weights.push(units);
        }
        if !r.weights.is_empty() && total != WEIGHT_TOTAL && weights.len() == r.weights.len() {
            self.problem(
                &wat,
                format!(
                    "weights add up to {}%, not 100%",
                    total as f64 / WEIGHT_SCALE
                ),
            );
        }
        let bucket_by = r.bucket_by.as_deref().map(|p| {
            self.check_path(&at.push("bucketBy"), p);
            Path::parse(p)
        });
        CompiledRollout {
            variants: variants.into_boxed_slice(),
            weights: weights.into_boxed_slice(),
            total: WEIGHT_TOTAL,
            bucket_by,
            prefix: Prefix::new(r.salt.as_deref().unwrap_or(flag_key)),
        }
    }

    fn check_path(&mut self, at: &Pointer, path: &str) {
        if path.is_empty() {
            self.problem(at, "attribute must not be empty");
        } else if path.split('.').any(str::is_empty) {
            self.problem(at, format!("attribute `{path}` has an empty path segment"));
        }
    }

    /// Compiles a list of clauses; segment references go into `refs`.
    fn clauses(
        &mut self,
        at: &Pointer,
        clauses: &[Clause],
        segment_index: &FxHashMap<&str, u32>,
        refs: &mut Vec<u32>,
    ) -> Box<[CompiledClause]> {
        clauses
            .iter()
            .enumerate()
            .filter_map(|(n, clause)| {
                let at = at.at(["clauses".to_string(), n.to_string()]);
                self.clause(&at, clause, segment_index, refs)
            })
            .collect()
    }

    fn clause(
        &mut self,
        at: &Pointer,
        clause: &Clause,
        segment_index: &FxHashMap<&str, u32>,
        refs: &mut Vec<u32>,
    ) -> Option<CompiledClause> {
        let vat = at.push("values");
        let values = &clause.values;
        let before = self.problems.len();
        if clause.op == Operator::InSegment {
            if !clause.attribute.is_empty() {
                self.problem(&at.push("attribute"), "`inSegment` takes no attribute");
            }
        } else {
            self.check_path(&at.push("attribute"), &clause.attribute);
        }
        match clause.op {
            Operator::Exists if !values.is_empty() => {
                self.problem(&vat, "`exists` takes no values");
            }
            Operator::Exists => {}
            _ if values.is_empty() => self.problem(&vat, "at least one value is needed"),
            _ => {}
        }
        let mut negate = clause.negate;
        let matcher = match clause.op {
            Operator::In => Matcher::In(ValueSet::new(values)),
            Operator::NotIn => {
                negate = !negate;
                Matcher::In(ValueSet::new(values))
            }
            Operator::StartsWith => Matcher::StartsWith(self.strings(&vat, values)),
            Operator::EndsWith => Matcher::EndsWith(self.strings(&vat, values)),
            Operator::Contains => Matcher::Contains(self.strings(&vat, values)),
            Operator::Matches => {
                let mut regexes = Vec::with_capacity(values.len());
                for (n, pattern) in self.strings(&vat, values).iter().enumerate() {
                    let built = regex_automata::meta::Regex::builder()
                        .configure(
                            regex_automata::meta::Config::new()
                                .nfa_size_limit(Some(REGEX_SIZE_LIMIT)),
                        )
                        .build(pattern);
                    match built {
                        Ok(re) => {
                            self.regex_bytes += re.memory_usage();
                            if self.regex_bytes > MAX_REGEX_BYTES {
                                self.problem(
                                    &vat.push(n),
                                    format!(
                                        "the document's regular expressions would take more than {} MiB compiled, the limit; this one brings them to {} KiB",
                                        MAX_REGEX_BYTES >> 20,
                                        self.regex_bytes >> 10
                                    ),
                                );
                            } else {
                                regexes.push(re);
                            }
                        }
                        Err(e) => {
                            let why = match (e.syntax_error(), e.size_limit()) {
                                (Some(syntax), _) => syntax.to_string(),
                                (None, Some(limit)) => format!(
                                    "it would take more than {} KiB compiled, the limit for one expression",
                                    limit >> 10
                                ),
                                _ => e.to_string(),
                            };
                            self.problem(
                                &vat.push(n),
                                format!("invalid regular expression: {}", one_line(&why)),
                            )
                        }
                    }
                }
                Matcher::Matches(regexes.into_boxed_slice())
            }
            Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
                let mut nums = Vec::with_capacity(values.len());
                for (n, v) in values.iter().enumerate() {
                    match v.as_f64() {
                        Some(f) => nums.push(f),
                        None => self.problem(
                            &vat.push(n),
                            format!("expected a number, found {}", json_type(v)),
                        ),
                    }
                }
                Matcher::Number(cmp_of(clause.op), nums.into_boxed_slice())
            }
            Operator::SemverEq
            | Operator::SemverLt
            | Operator::SemverLte
            | Operator::SemverGt
            | Operator::SemverGte => {
                let mut versions = Vec::with_capacity(values.len());
                for (n, v) in values.iter().enumerate() {
                    match v.as_str().map(|s| (s, parse_semver(s))) {
                        Some((_, Some(ver))) => versions.push(ver),
                        Some((s, None)) => {
                            self.problem(&vat.push(n), format!("invalid semantic version `{s}`"))
                        }
                        None => self.problem(
                            &vat.push(n),
                            format!("expected a version string, found {}", json_type(v)),
                        ),
                    }
                }
                Matcher::Semver(cmp_of(clause.op), versions.into_boxed_slice())
            }
            Operator::Before | Operator::After => {
                let mut dates = Vec::with_capacity(values.len());
                for (n, v) in values.iter().enumerate() {
                    match parse_date(v) {
                        Some(d) => dates.push(d),
                        None => self.problem(
                            &vat.push(n),
                            format!("invalid date {v}: use an RFC 3339 string or Unix seconds"),
                        ),
                    }
                }
                if clause.op == Operator::Before {
                    Matcher::Before(dates.into_boxed_slice())
                } else {
                    Matcher::After(dates.into_boxed_slice())
                }
            }
            Operator::Exists => Matcher::Exists,
            Operator::InSegment => {
                let mut segs = Vec::with_capacity(values.len());
                for (n, v) in values.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => match segment_index.get(s) {
                            Some(&i) => {
                                segs.push(i);
                                refs.push(i);
                            }
                            None => self.problem(&vat.push(n), format!("unknown segment `{s}`")),
                        },
                        None => self.problem(
                            &vat.push(n),
                            format!("expected a segment key, found {}", json_type(v)),
                        ),
                    }
                }
                Matcher::InSegment(segs.into_boxed_slice())
            }
        };
        (self.problems.len() == before).then(|| CompiledClause {
            path: Path::parse(&clause.attribute),
            matcher,
            negate,
        })
    }

    fn strings(&mut self, at: &Pointer, values: &[Value]) -> Box<[Box<str>]> {
        let mut out = Vec::with_capacity(values.len());
        for (n, v) in values.iter().enumerate() {
            match v.as_str() {
                Some(s) => out.push(s.into()),
                None => self.problem(
                    &at.push(n),
                    format!("expected a string, found {}", json_type(v)),
                ),
            }
        }
        out.into_boxed_slice()
    }
}

fn cmp_of(op: Operator) -> Cmp {
    match op {
        Operator::Lt | Operator::SemverLt => Cmp::Lt,
        Operator::Lte | Operator::SemverLte => Cmp::Lte,
        Operator::Gt | Operator::SemverGt => Cmp::Gt,
        Operator::Gte | Operator::SemverGte => Cmp::Gte,
        _ => Cmp::Eq,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Finds cycles in a directed graph given as adjacency lists; returns one
/// path per cycle found, starting and ending at the same node.
/// For an acyclic graph, the number of nodes on the longest path starting
/// at each node (1 for a node without edges). Iterative, so that a chain
/// thousands deep cannot overflow the stack.
pub(crate) fn chain_depths(edges: &[Vec<u32>]) -> Vec<usize> {
    let mut depth = vec![0usize; edges.len()];
    for start in 0..edges.len() {
        if depth[start] != 0 {
            continue;
        }
        let mut stack: Vec<(u32, usize)> = vec![(start as u32, 0)];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let out = &edges[node as usize];
            if *next < out.len() {
                let to = out[*next];
                *next += 1;
                if depth[to as usize] == 0 {
                    stack.push((to, 0));
                }
            } else {
                let below = out.iter().map(|&t| depth[t as usize]).max().unwrap_or(0);
                depth[node as usize] = below + 1;
                stack.pop();
            }
        }
    }
    depth
}

pub(crate) fn find_cycles(edges: &[Vec<u32>]) -> Vec<Vec<u32>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done,
    }
    let mut state = vec![State::New; edges.len()];
    let mut cycles = Vec::new();
    let mut reported: FxHashSet<u32> = FxHashSet::default();
    for start in 0..edges.len() {
        if state[start] != State::New {
            continue;
        }
        // Iterative depth-first search: (node, next edge to follow).
        let mut stack: Vec<(u32, usize)> = vec![(start as u32, 0)];
        state[start] = State::Open;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let out = &edges[node as usize];
            if *next < out.len() {
                let to = out[*next];
                *next += 1;
                match state[to as usize] {
                    State::New => {
                        state[to as usize] = State::Open;
                        stack.push((to, 0));
                    }
                    State::Open => {
                        let from = stack.iter().position(|&(n, _)| n == to).unwrap_or(0);
                        let mut cycle: Vec<u32> = stack[from..].iter().map(|&(n, _)| n).collect();
                        if cycle.iter().all(|n| !reported.contains(n)) {
                            reported.extend(cycle.iter().copied());
                            cycle.push(to);
                            cycles.push(cycle);
                        }
                    }
                    State::Done => {}
                }
            } else {
                state[node as usize] = State::Done;
                stack.pop();
            }
        }
    }
    cycles
}
