//! Reading documents from text: JSON or YAML, native or flagd format.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::compile::Compiled;
use crate::error::{LoadError, Problems};
use crate::flagd::FlagdDocument;
use crate::model::Document;
use crate::pointer::{Pointer, from_serde_path};

/// Which document format a text is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Decide from the content: a file with `$evaluators`, or with flags
    /// that have a `state`, is flagd; anything else is native.
    #[default]
    Auto,
    /// Vexil's own format ([`Document`]).
    Native,
    /// flagd's flag definition format ([`FlagdDocument`]).
    Flagd,
}

/// A parsed document of either format.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A native document.
    Native(Document),
    /// A flagd document.
    Flagd(FlagdDocument),
}

impl Source {
    /// The document in native form (flagd documents are converted with
    /// [`crate::flagd::to_native`]).
    pub fn into_native(self) -> Result<Document, Problems> {
        match self {
            Source::Native(d) => Ok(d),
            Source::Flagd(d) => crate::flagd::to_native(&d),
        }
    }

    /// The document in native form for serving a flag file: flagd
    /// targeting whose `$ref`s cannot be resolved is kept as written, so
    /// that only that flag is invalid (see [`crate::compile_serving`]).
    pub fn into_native_serving(self) -> Document {
        match self {
            Source::Native(d) => d,
            Source::Flagd(d) => crate::flagd::to_native_serving(&d),
        }
    }

    /// Validates and compiles the document.
    pub fn compile(&self) -> Result<Compiled, Problems> {
        match self {
            Source::Native(d) => crate::compile::compile(d),
            Source::Flagd(d) => crate::flagd::compile(d),
        }
    }
}

/// Parses a document. JSON is recognised by its leading `{`; anything else
/// is read as YAML.
pub fn parse(text: &str, format: Format) -> Result<Source, LoadError> {
    let format = match format {
        Format::Auto => detect(text),
        f => f,
    };
    Ok(match format {
        Format::Flagd => Source::Flagd(parse_as(text)?),
        _ => Source::Native(parse_as(text)?),
    })
}

/// Parses and compiles a document.
pub fn load(text: &str, format: Format) -> Result<Compiled, LoadError> {
    parse(text, format)?.compile().map_err(LoadError::Invalid)
}

pub(crate) fn is_json(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
}

/// Deserializes a typed document, reporting where the parser stopped.
fn parse_as<T: DeserializeOwned>(text: &str) -> Result<T, LoadError> {
    let text = text.trim_start_matches('\u{feff}');
    if is_json(text) {
        // Most documents parse: only a failed parse is repeated with the
        // path tracked (which costs half as much again as the parse).
        if let Ok(value) = serde_json::from_str(text) {
            return Ok(value);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| LoadError::Syntax {
            pointer: known_part(from_serde_path(e.path())),
            // Well-formed JSON of the wrong shape is not "invalid JSON".
            message: match e.inner().classify() {
                serde_json::error::Category::Data => format!("invalid document: {}", e.inner()),
                _ => format!("invalid JSON document: {}", e.inner()),
            },
        })?;
        de.end().map_err(|e| LoadError::Syntax {
            pointer: Pointer::root(),
            message: format!("invalid JSON document: {e}"),
        })?;
        Ok(value)
    } else {
        check_yaml_nesting(text)?;
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            // Well-formed YAML of the wrong shape is not "invalid YAML".
            let well_formed = serde_yaml_ng::from_str::<IgnoredAny>(text).is_ok();
            LoadError::Syntax {
                pointer: known_part(from_serde_path(e.path())),
                message: if well_formed {
                    format!("invalid document: {}", e.inner())
                } else {
                    format!("invalid YAML document: {}", e.inner())
                },
            }
        })
    }
}

/// Deepest flow nesting (`[` / `{`) accepted in YAML. The YAML parser
/// takes time quadratic in this depth, so a small hostile file could stall
/// a loader for minutes; documents never need more than a few levels.
const MAX_YAML_FLOW_DEPTH: usize = 128;

/// A pointer without the `?` of a map key that could not be read: the map
/// holding it.
fn known_part(p: Pointer) -> Pointer {
    match p.as_str().find("/?") {
        Some(at) if p.as_str()[at..].split('/').nth(1) == Some("?") => {
            let kept: Vec<String> = p.as_str()[..at]
                .split('/')
                .skip(1)
                .map(|t| t.replace("~1", "/").replace("~0", "~"))
                .collect();
            Pointer::root().at(kept)
        }
        _ => p,
    }
}

/// Refuses YAML whose flow collections nest deeper than
/// [`MAX_YAML_FLOW_DEPTH`], skipping quoted scalars and comments.
pub(crate) fn check_yaml_nesting(text: &str) -> Result<(), LoadError> {
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    let mut prev = '\n';
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '#' if prev.is_whitespace() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '\'' if !prev.is_alphanumeric() => {
                for c in chars.by_ref() {
                    match c {
                        // A doubled quote is an escaped quote: the next
                        // iteration reopens the scalar.
                        '\'' => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_YAML_FLOW_DEPTH {
                    return Err(LoadError::Syntax {
                        pointer: Pointer::root(),
                        message: format!(
                            "invalid YAML document: collections nest deeper than {MAX_YAML_FLOW_DEPTH} levels at line {line}"
                        ),
                    });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "$evaluators")]
    evaluators: Option<IgnoredAny>,
    #[serde(default)]
    flags: HashMap<String, FlagProbe>,
}

#[derive(Deserialize)]
struct FlagProbe {
    #[serde(default)]
    state: Option<IgnoredAny>,
}

pub(crate) fn detect(text: &str) -> Format {
    let text = text.trim_start_matches('\u{feff}');
    let probe: Option<Probe> = if is_json(text) {
        serde_json::from_str(text).ok()
    } else if check_yaml_nesting(text).is_ok() {
        serde_yaml_ng::from_str(text).ok()
    } else {
        None
    };
    match probe {
        Some(p) if p.evaluators.is_some() || p.flags.values().any(|f| f.state.is_some()) => {
            Format::Flagd
        }
        _ => Format::Native,
    }
}
