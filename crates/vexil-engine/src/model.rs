//! The native flag model: what a document (one environment's flags and
//! segments) looks like in JSON or YAML.
//!
//! These types are plain data. They parse structurally (types, unknown
//! fields, duplicate keys) with serde; everything semantic (unknown
//! variants, weights, cycles, regexes, …) is checked by [`crate::validate`]
//! so that every error can be reported at once with its place.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keyed::Keyed;

/// One environment's flags and segments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    /// Optional JSON schema reference; ignored.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Which hash encoding percentage rollouts use (see [`Bucketing`]).
    #[serde(default, skip_serializing_if = "Bucketing::is_default")]
    pub bucketing: Bucketing,
    /// Reusable audiences, by key.
    #[serde(default, skip_serializing_if = "Keyed::is_empty")]
    pub segments: Keyed<SegmentDef>,
    /// Flags, by key.
    #[serde(default)]
    pub flags: Keyed<FlagDef>,
    /// Free-form metadata of the whole document, overlaid by each flag's own.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// How the bucketing value of a percentage rollout is turned into bytes
/// before hashing. Both use MurmurHash3 x86 32-bit and the same bucket
/// arithmetic; they differ only in the hashed bytes, matching the two flagd
/// generations so that users keep their buckets when moving over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucketing {
    /// flagd's `fractional` as shipped today: the UTF-8 bytes of the
    /// bucketing string (by default flag key followed by targeting key).
    #[default]
    Concat,
    /// flagd's newer variant: a deterministic CBOR encoding of the bucketing
    /// value (by default the array `[flagKey, targetingKey]`).
    Cbor,
}

impl Bucketing {
    fn is_default(&self) -> bool {
        *self == Bucketing::default()
    }
}

/// A flag definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagDef {
    /// Human description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Tags for search and grouping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The type of every variant. Inferred from the first variant when absent.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<FlagType>,
    /// Whether the flag is meant to be removed one day.
    #[serde(default)]
    pub kind: FlagKind,
    /// Variant key to value.
    pub variants: Keyed<Value>,
    /// Whether targeting runs; when off, the off variant is served.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Served when the flag is off or a prerequisite fails. Without one, such
    /// evaluations return no value and callers use their code default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variant: Option<String>,
    /// Served when no target and no rule matches (or, with `targeting`,
    /// when targeting gives null). Without it such evaluations return no
    /// value and callers use their code default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_serve: Option<Serve>,
    /// flagd-style JsonLogic targeting returning a variant key (or null for
    /// the default), evaluated with flagd's semantics. Replaces `targets`
    /// and `rules`; this is how flags imported from flagd files are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Value>,
    /// Variant key to the targeting keys that always get it.
    #[serde(default, skip_serializing_if = "Keyed::is_empty")]
    pub targets: Keyed<Vec<String>>,
    /// Rules, tried in order; the first whose clauses all hold serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Flags that must give a given variant before this flag's targeting runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// Free-form metadata, returned with evaluations. Values are strings,
    /// numbers or booleans, as OpenFeature flag metadata requires.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

fn yes() -> bool {
    true
}

/// The type shared by all variants of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagType {
    /// `true` / `false`.
    Boolean,
    /// Any string.
    String,
    /// Integers and floats alike.
    Number,
    /// A JSON object.
    Object,
}

impl FlagType {
    /// The type of a JSON value, if it can be a variant value.
    pub fn of(value: &Value) -> Option<FlagType> {
        match value {
            Value::Bool(_) => Some(FlagType::Boolean),
            Value::String(_) => Some(FlagType::String),
            Value::Number(_) => Some(FlagType::Number),
            // Arrays are structure values too, as flagd (and OpenFeature's
            // object evaluation) treat them.
            Value::Object(_) | Value::Array(_) => Some(FlagType::Object),
            Value::Null => None,
        }
    }

    /// The name used in documents and messages.
    pub fn name(self) -> &'static str {
        match self {
            FlagType::Boolean => "boolean",
            FlagType::String => "string",
            FlagType::Number => "number",
            FlagType::Object => "object",
        }
    }
}

/// Whether a flag is a short-lived release toggle or a permanent switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// Expected to be removed once rolled out; shown as stale when unused.
    #[default]
    Temporary,
    /// Kept for good (kill switches, entitlements, configuration).
    Permanent,
}

/// What a rule or the default serves: one variant, or a percentage rollout.
/// Exactly one of the two is set (validation checks). A struct rather than
/// an enum so that JSON and YAML spell it the same way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Serve {
    /// Always this variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// A percentage split over variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

impl Serve {
    /// Serves one variant.
    pub fn variant(key: impl Into<String>) -> Self {
        Serve {
            variant: Some(key.into()),
            rollout: None,
        }
    }
}

/// A percentage rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// Variant key to percentage (0–100, up to three decimals), summing to
    /// 100. Buckets are assigned in this order.
    pub weights: Keyed<f64>,
    /// Context attribute (dotted path) whose value is hashed. Defaults to
    /// the targeting key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// Replaces the flag key in the hashed value. Flags sharing a salt put
    /// a user in the same bucket; changing it reshuffles everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// A targeting rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Optional stable name, reported with evaluations that match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Clauses that must all hold. No clauses matches every context.
    #[serde(default)]
    pub clauses: Vec<Clause>,
    /// What the rule serves when it matches.
    pub serve: Serve,
}

/// One condition on the context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Clause {
    /// Dotted path into the context, e.g. `user.plan`. `targetingKey` is
    /// the targeting key. Unused by `inSegment`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute: String,
    /// The comparison.
    pub op: Operator,
    /// Values to compare with; the clause holds when any of them matches.
    #[serde(default)]
    pub values: Vec<Value>,
    /// Inverts the result (when the attribute is present).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negate: bool,
}

/// Clause operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operator {
    /// Equal to one of the values.
    In,
    /// Equal to none of the values.
    NotIn,
    /// String starts with one of the values.
    StartsWith,
    /// String ends with one of the values.
    EndsWith,
    /// String contains one of the values.
    Contains,
    /// String matches one of the regular expressions.
    Matches,
    /// Number less than.
    Lt,
    /// Number less than or equal.
    Lte,
    /// Number greater than.
    Gt,
    /// Number greater than or equal.
    Gte,
    /// Semantic version equal.
    SemverEq,
    /// Semantic version less than.
    SemverLt,
    /// Semantic version less than or equal.
    SemverLte,
    /// Semantic version greater than.
    SemverGt,
    /// Semantic version greater than or equal.
    SemverGte,
    /// Date (RFC 3339 string or Unix seconds) before.
    Before,
    /// Date (RFC 3339 string or Unix seconds) after.
    After,
    /// The attribute is present and not null.
    Exists,
    /// The context belongs to one of the named segments.
    InSegment,
}

/// A prerequisite: another flag must give a given variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prerequisite {
    /// Key of the other flag.
    pub flag: String,
    /// The variant it must give (and it must be enabled).
    pub variant: String,
}

/// A reusable audience.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SegmentDef {
    /// Human description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Targeting keys always in the segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included: Vec<String>,
    /// Targeting keys never in the segment (wins over everything else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// A context is in the segment when any rule's clauses all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<SegmentRule>,
}

/// A segment rule: clauses that must all hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SegmentRule {
    /// Clauses that must all hold.
    pub clauses: Vec<Clause>,
}
