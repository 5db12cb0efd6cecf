//! flagd flag definitions: read them and compile them into the same
//! [`Snapshot`] as native documents, with flagd's evaluation semantics.
//!
//! Targeting is JsonLogic, compiled once per flag (after `$ref`
//! substitution) by the `logic` module. Targeting that cannot be compiled does not
//! reject the file: that flag's evaluations report PARSE_ERROR, as in
//! flagd, and the problem is returned as a warning.

pub(crate) mod logic;
mod translate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::compile::{Compiled, Compiler};
use crate::error::{Problem, Problems};
use crate::explain::Sources;
use crate::keyed::Keyed;
use crate::model::{Bucketing, Document, FlagDef, FlagKind, Serve};
use crate::pointer::Pointer;
use crate::snapshot::{CompiledFlag, FlagdLogic, Logic, Snapshot, Targeting};

pub use translate::{LeftOut, Translation, Untranslatable, to_flagd};

/// A flagd flag definition file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagdDocument {
    /// Optional JSON schema reference; ignored.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Vexil extension: which flagd generation's `fractional` hashing to
    /// use. Defaults to the one flagd ships today.
    #[serde(default, skip_serializing_if = "is_default")]
    pub bucketing: Bucketing,
    /// Flags by key.
    pub flags: Keyed<FlagdFlag>,
    /// Shared targeting fragments, referenced with `{"$ref": "name"}`.
    #[serde(rename = "$evaluators", default, skip_serializing_if = "Map::is_empty")]
    pub evaluators: Map<String, Value>,
    /// Flag-set metadata, overlaid by each flag's metadata.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

fn is_default(b: &Bucketing) -> bool {
    *b == Bucketing::default()
}

/// One flagd flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagdFlag {
    /// `ENABLED` or `DISABLED`.
    pub state: FlagdState,
    /// Variant key to value.
    pub variants: Keyed<Value>,
    /// Served when targeting gives null or is absent. Null or absent means
    /// "use the caller's code default".
    #[serde(default)]
    pub default_variant: Option<String>,
    /// JsonLogic returning a variant key (or null for the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Value>,
    /// Flag metadata.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// Whether a flagd flag is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlagdState {
    /// Targeting runs.
    Enabled,
    /// Evaluations succeed with reason DISABLED and no value.
    Disabled,
}

/// Converts a flagd document into a native one: each flag keeps its
/// variants, state and default, its targeting (with `$ref`s inlined) as
/// `targeting`, and the flag-set metadata overlaid by its own. The result
/// evaluates exactly like the original; this is how flagd files are
/// imported into a store.
pub fn to_native(doc: &FlagdDocument) -> Result<Document, Problems> {
    let (native, problems) = to_native_parts(doc);
    if problems.is_empty() {
        Ok(native)
    } else {
        Err(Problems(problems))
    }
}

/// Like [`to_native`] for serving a flag file: a flag whose `$ref`s cannot
/// be resolved keeps its targeting as written, so that compiling it (with
/// [`crate::compile_serving`]) marks that flag alone as invalid.
pub fn to_native_serving(doc: &FlagdDocument) -> Document {
    to_native_parts(doc).0
}

fn to_native_parts(doc: &FlagdDocument) -> (Document, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut flags = Vec::with_capacity(doc.flags.len());
    for (key, f) in doc.flags.iter() {
        let targeting = match &f.targeting {
            None => None,
            Some(t) => match logic::resolve_refs(t, &doc.evaluators) {
                Ok(t) => Some(t),
                Err(why) => {
                    problems.push(Problem {
                        pointer: Pointer::root().at(["flags", key, "targeting"]),
                        message: why,
                    });
                    Some(t.clone())
                }
            },
        };
        let mut metadata = doc.metadata.clone();
        metadata.extend(f.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        flags.push((
            key.to_owned(),
            FlagDef {
                description: String::new(),
                tags: Vec::new(),
                value_type: None,
                kind: FlagKind::default(),
                variants: f.variants.clone(),
                enabled: f.state == FlagdState::Enabled,
                off_variant: None,
                default_serve: f.default_variant.clone().map(Serve::variant),
                targeting: Some(targeting.unwrap_or(Value::Null)).filter(|t| !t.is_null()),
                targets: Keyed::default(),
                rules: Vec::new(),
                prerequisites: Vec::new(),
                metadata,
            },
        ));
    }
    let native = Document {
        bucketing: doc.bucketing,
        flags: Keyed::from_pairs(flags),
        ..Document::default()
    };
    (native, problems)
}

/// Validates and compiles a flagd document.
pub fn compile(doc: &FlagdDocument) -> Result<Compiled, Problems> {
    let mut c = Compiler::default();
    let mut warnings = Vec::new();
    let root = Pointer::root();
    let mut flags = Vec::with_capacity(doc.flags.len());
    let mut seen = rustc_hash::FxHashSet::default();
    for (key, def) in doc.flags.iter() {
        let at = root.at(["flags", key]);
        if key.is_empty() {
            c.problem(&at, "flag key must not be empty");
        }
        if !seen.insert(key) {
            c.problem(&at, format!("duplicate flag key `{key}`"));
        }
        let (value_type, variants) = c.variants(&at.push("variants"), None, def.variants.iter());
        let default = match def.default_variant.as_deref() {
            None => None,
            Some(name) => match def.variants.position(name) {
                Some(i) => Some(i as u32),
                None => {
                    c.problem(
                        &at.push("defaultVariant"),
                        format!("default variant `{name}` is not a variant of flag `{key}`"),
                    );
                    None
                }
            },
        };
        let targeting = match &def.targeting {
            None | Some(Value::Null) => Targeting::None,
            Some(Value::Object(m)) if m.is_empty() => Targeting::None,
            Some(t) => match logic::resolve_refs(t, &doc.evaluators)
                .and_then(|t| logic::compile(&t, key))
            {
                Ok(expr) => Targeting::Expr(expr),
                Err(why) => {
                    warnings.push(Problem {
                        pointer: at.push("targeting"),
                        message: why.clone(),
                    });
                    Targeting::Broken(why.into())
                }
            },
        };
        let metadata = c.metadata(&at.push("metadata"), &doc.metadata, &def.metadata);
        flags.push(std::sync::Arc::new(CompiledFlag {
            key: key.into(),
            value_type,
            kind: FlagKind::default(),
            variants: variants.into_boxed_slice(),
            enabled: def.state == FlagdState::Enabled,
            off_variant: None,
            prerequisites: Box::new([]),
            logic: Logic::Flagd(FlagdLogic { default, targeting }),
            metadata,
            regex_bytes: 0,
            positional: false,
        }));
    }
    for (k, v) in &doc.metadata {
        if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            c.problem(
                &root.at(["metadata", k]),
                "metadata values must be strings, numbers or booleans",
            );
        }
    }
    if !c.problems.is_empty() {
        return Err(Problems(c.problems));
    }
    Ok(Compiled {
        // No native rules or segments: nothing for explanations to keep.
        snapshot: Snapshot::new(flags, Vec::new(), doc.bucketing, Sources::default(), None),
        warnings,
    })
}
