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

fn is_json(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
}

/// Deserializes a typed document, reporting where the parser stopped.
fn parse_as<T: DeserializeOwned>(text: &str) -> Result<T, LoadError> {
    let text = text.trim_start_matches('\u{feff}');
    if is_json(text) {
        let mut de = serde_json::Deserializer::from_str(text);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| LoadError::Syntax {
            pointer: from_serde_path(e.path()),
            message: format!("invalid JSON document: {}", e.inner()),
        })?;
        de.end().map_err(|e| LoadError::Syntax {
            pointer: Pointer::root(),
            message: format!("invalid JSON document: {e}"),
        })?;
        Ok(value)
    } else {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| LoadError::Syntax {
            pointer: from_serde_path(e.path()),
            message: format!("invalid YAML document: {}", e.inner()),
        })
    }
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

fn detect(text: &str) -> Format {
    let text = text.trim_start_matches('\u{feff}');
    let probe: Option<Probe> = if is_json(text) {
        serde_json::from_str(text).ok()
    } else {
        serde_yaml_ng::from_str(text).ok()
    };
    match probe {
        Some(p) if p.evaluators.is_some() || p.flags.values().any(|f| f.state.is_some()) => {
            Format::Flagd
        }
        _ => Format::Native,
    }
}
