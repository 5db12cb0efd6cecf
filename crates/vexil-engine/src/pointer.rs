//! JSON pointers (RFC 6901) naming places in a document, for error messages.

use std::fmt;

/// A JSON pointer such as `/flags/checkout/rules/2/clauses/0/values`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pointer(String);

impl Pointer {
    /// The pointer to the whole document.
    pub fn root() -> Self {
        Pointer(String::new())
    }

    /// A pointer one level deeper, escaping `~` and `/` in the token.
    pub fn push(&self, token: impl fmt::Display) -> Self {
        let token = token.to_string();
        let mut s = String::with_capacity(self.0.len() + token.len() + 1);
        s.push_str(&self.0);
        s.push('/');
        for c in token.chars() {
            match c {
                '~' => s.push_str("~0"),
                '/' => s.push_str("~1"),
                c => s.push(c),
            }
        }
        Pointer(s)
    }

    /// Shorthand for a chain of [`Pointer::push`].
    pub fn at<I, T>(&self, tokens: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: fmt::Display,
    {
        tokens.into_iter().fold(self.clone(), |p, t| p.push(t))
    }

    /// The pointer text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("/")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Converts a serde path (as tracked by `serde_path_to_error`) into a pointer.
pub(crate) fn from_serde_path(path: &serde_path_to_error::Path) -> Pointer {
    use serde_path_to_error::Segment;
    let mut p = Pointer::root();
    for seg in path.iter() {
        p = match seg {
            Segment::Seq { index } => p.push(index),
            Segment::Map { key } => p.push(key),
            Segment::Enum { variant } => p.push(variant),
            Segment::Unknown => p.push("?"),
        };
    }
    p
}
