//! The compiled, immutable form of a document: what evaluators hold and
//! swap atomically when a new version arrives.

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{Map, Value};

use crate::context::Path;
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
    pub(crate) flags: Box<[CompiledFlag]>,
    pub(crate) index: FxHashMap<Box<str>, u32>,
    pub(crate) segments: Box<[CompiledSegment]>,
    pub(crate) bucketing: Bucketing,
}

impl Snapshot {
    /// A snapshot with no flags.
    pub fn empty() -> Self {
        Snapshot {
            flags: Box::new([]),
            index: FxHashMap::default(),
            segments: Box::new([]),
            bucketing: Bucketing::default(),
        }
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
        let at = *self.index.get(key)?;
        self.flags.get(at as usize)
    }

    /// All flags, in document order.
    pub fn flags(&self) -> impl ExactSizeIterator<Item = &CompiledFlag> {
        self.flags.iter()
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
            Logic::Flagd(_) => None,
        }
    }

    pub(crate) fn variant_index(&self, key: &str) -> Option<u32> {
        self.variants
            .iter()
            .position(|v| &*v.key == key)
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
}

#[derive(Debug)]
pub(crate) struct NativeLogic {
    /// Targeting key to variant index.
    pub(crate) targets: FxHashMap<Box<str>, u32>,
    pub(crate) rules: Box<[CompiledRule]>,
    pub(crate) default: CompiledServe,
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
    /// Replaces the flag key in the hashed value.
    pub(crate) salt: Option<Box<str>>,
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
