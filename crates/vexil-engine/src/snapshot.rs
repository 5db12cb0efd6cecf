//! The compiled, immutable form of a document: what evaluators hold and
//! swap atomically when a new version arrives.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use serde_json::{Map, Value};

use crate::bucket::Prefix;
use crate::compare::str_eq;
use crate::context::Path;
use crate::explain::Sources;
use crate::flagd::logic::Expr;
use crate::model::{Bucketing, FlagKind, FlagType};
use crate::rules::CompiledClause;

/// An environment's flags, compiled for evaluation.
///
/// Built once per version by [`crate::compile`] (or the flagd reader) and
/// then only read: evaluation takes no locks and allocates nothing on the
/// common path.
#[derive(Debug)]
pub struct Snapshot {
    /// Shared with the versions before and after this one that did not
    /// change the flag (see [`crate::compile_reusing`]).
    pub(crate) flags: Box<[Arc<CompiledFlag>]>,
    /// Flag positions by key hash; keys are compared in `flags`.
    pub(crate) index: HashTable<u32>,
    pub(crate) segments: Box<[CompiledSegment]>,
    pub(crate) bucketing: Bucketing,
    /// What explanations show and evaluation never reads (clauses as
    /// written, salts, segment keys), apart from the compiled forms.
    pub(crate) sources: Sources,
}

impl Snapshot {
    pub(crate) fn new(
        flags: Vec<Arc<CompiledFlag>>,
        segments: Vec<CompiledSegment>,
        bucketing: Bucketing,
        sources: Sources,
        index: Option<HashTable<u32>>,
    ) -> Self {
        // A prior version's index serves when the keys and their order are
        // the same (the caller knows).
        let index = index.unwrap_or_else(|| {
            let mut index = HashTable::with_capacity(flags.len());
            for (i, f) in flags.iter().enumerate() {
                index.insert_unique(key_hash(&f.key), i as u32, |&j| {
                    key_hash(&flags[j as usize].key)
                });
            }
            index
        });
        Snapshot {
            flags: flags.into_boxed_slice(),
            index,
            segments: segments.into_boxed_slice(),
            bucketing,
            sources,
        }
    }

    /// A snapshot with no flags.
    pub fn empty() -> Self {
        Snapshot::new(
            Vec::new(),
            Vec::new(),
            Bucketing::default(),
            Sources::default(),
            None,
        )
    }

    /// The position of a flag in document order.
    #[inline]
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        let flags = &self.flags;
        self.index
            .find(key_hash(key), |&i| str_eq(&flags[i as usize].key, key))
            .map(|&i| i as usize)
    }

    /// Number of flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Looks a flag up by key.
    #[inline]
    pub fn flag(&self, key: &str) -> Option<&CompiledFlag> {
        self.flags.get(self.position(key)?).map(|f| &**f)
    }

    /// All flags, in document order.
    pub fn flags(&self) -> impl ExactSizeIterator<Item = &CompiledFlag> {
        self.flags.iter().map(|f| &**f)
    }

    /// The hash encoding used by percentage rollouts.
    pub fn bucketing(&self) -> Bucketing {
        self.bucketing
    }
}

/// One flag, compiled.
#[derive(Debug)]
pub struct CompiledFlag {
    pub(crate) key: Box<str>,
    pub(crate) value_type: FlagType,
    pub(crate) kind: FlagKind,
    pub(crate) variants: Box<[Variant]>,
    pub(crate) enabled: bool,
    pub(crate) off_variant: Option<u32>,
    /// (flag index, variant index) pairs that must hold, in order.
    pub(crate) prerequisites: Box<[(u32, u32)]>,
    pub(crate) logic: Logic,
    /// Document metadata overlaid by the flag's own, merged once here.
    pub(crate) metadata: Map<String, Value>,
    /// Compiled size of the flag's regular expressions (the document's
    /// budget counts them again when the flag is reused).
    pub(crate) regex_bytes: usize,
    /// Whether the compiled form holds positions of other flags or of
    /// segments (prerequisites, `inSegment`): it can be reused only while
    /// those positions stay the same.
    pub(crate) positional: bool,
}

impl CompiledFlag {
    /// The flag key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The type of every variant.
    pub fn value_type(&self) -> FlagType {
        self.value_type
    }

    /// Temporary or permanent.
    pub fn kind(&self) -> FlagKind {
        self.kind
    }

    /// Whether targeting runs.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Flag metadata (document metadata overlaid by the flag's).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// Variant keys and values, in document order.
    pub fn variants(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.variants.iter().map(|v| (&*v.key, &v.value))
    }

    /// The name of rule `index`, if it has one.
    pub fn rule_name(&self, index: usize) -> Option<&str> {
        match &self.logic {
            Logic::Native(n) => n.rules.get(index)?.name.as_deref(),
            Logic::Flagd(_) | Logic::Broken(_) => None,
        }
    }

    /// Whether the flag cannot be evaluated: its definition or its flagd
    /// targeting is invalid, and its evaluations give PARSE_ERROR.
    pub fn is_broken(&self) -> bool {
        match &self.logic {
            Logic::Broken(_) => true,
            Logic::Flagd(f) => matches!(f.targeting, Targeting::Broken(_)),
            Logic::Native(_) => false,
        }
    }

    pub(crate) fn variant_index(&self, key: &str) -> Option<u32> {
        self.variants
            .iter()
            .position(|v| str_eq(&v.key, key))
            .map(|i| i as u32)
    }
}

#[derive(Debug)]
pub(crate) struct Variant {
    pub(crate) key: Box<str>,
    pub(crate) value: Value,
}

/// How a flag picks a variant when it is enabled.
#[derive(Debug)]
pub(crate) enum Logic {
    Native(NativeLogic),
    Flagd(FlagdLogic),
    /// The flag's definition is invalid (a served flag file keeps such
    /// flags): every evaluation gives PARSE_ERROR with this explanation.
    Broken(Box<str>),
}

#[derive(Debug)]
pub(crate) struct NativeLogic {
    /// Targeting key to variant index.
    pub(crate) targets: FxHashMap<Box<str>, u32>,
    pub(crate) rules: Box<[CompiledRule]>,
    /// `None`: nothing is served when nothing matches (no value).
    pub(crate) default: Option<CompiledServe>,
    /// No targets, rules or prerequisites: the default is served to all.
    pub(crate) is_static: bool,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) name: Option<Box<str>>,
    pub(crate) clauses: Box<[CompiledClause]>,
    pub(crate) serve: CompiledServe,
}

#[derive(Debug)]
pub(crate) enum CompiledServe {
    Variant(u32),
    Rollout(CompiledRollout),
}

#[derive(Debug)]
pub(crate) struct CompiledRollout {
    /// Variant indexes, in bucket order.
    pub(crate) variants: Box<[u32]>,
    /// Integer weights, same order.
    pub(crate) weights: Box<[u64]>,
    pub(crate) total: u64,
    /// `None`: the targeting key.
    pub(crate) bucket_by: Option<Path>,
    /// Hash state after the salt (or, without one, the flag key).
    pub(crate) prefix: Prefix,
}

#[derive(Debug)]
pub(crate) struct FlagdLogic {
    /// `None` when the default variant is null: callers use their default.
    pub(crate) default: Option<u32>,
    pub(crate) targeting: Targeting,
}

#[derive(Debug)]
pub(crate) enum Targeting {
    /// No targeting (absent or `{}`): the default, reason STATIC.
    None,
    Expr(Expr),
    /// Targeting that could not be compiled; evaluations get PARSE_ERROR.
    Broken(Box<str>),
}

#[derive(Debug)]
pub(crate) struct CompiledSegment {
    pub(crate) included: FxHashSet<Box<str>>,
    pub(crate) excluded: FxHashSet<Box<str>>,
    pub(crate) rules: Box<[Box<[CompiledClause]>]>,
}

#[inline]
fn key_hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}
