//! Errors of reading and validating documents.

use std::fmt;

use crate::pointer::Pointer;

/// One problem in a document, at its exact place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a JSON pointer such as `/flags/checkout/rules/2/clauses/0/values`.
    pub pointer: Pointer,
    /// What is wrong, in lowercase without a trailing period.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// Every problem found in a document (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in document",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Why a document could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The text is not well-formed JSON/YAML, or does not have the shape of
    /// a document (wrong type, unknown field, duplicate key).
    #[error("{message} (at {pointer})")]
    Syntax {
        /// Where the parser stopped.
        pointer: Pointer,
        /// The parser's message, with line and column when known.
        message: String,
    },
    /// The document is well-formed but invalid.
    #[error("{0}")]
    Invalid(Problems),
}

impl LoadError {
    /// Every problem, as (pointer, message) pairs, for reporting.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            LoadError::Syntax { pointer, message } => vec![Problem {
                pointer: pointer.clone(),
                message: message.clone(),
            }],
            LoadError::Invalid(p) => p.0.clone(),
        }
    }
}
