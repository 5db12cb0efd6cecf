//! Checking a document text for `vexil validate`: every problem at once,
//! structural ones (unknown fields, unknown operators, wrong types)
//! included, each with its JSON pointer and the line it is on.
//!
//! A typed parse stops at the first structural problem. Here the text is
//! read as plain JSON, then parsed into the document types again and
//! again: each time the part that failed is reported and taken out, until
//! what is left parses. What is left is then compiled for the semantic
//! problems of the flags that had no structural ones.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{LoadError, Problem};
use crate::flagd::FlagdDocument;
use crate::keyed::KeyText;
use crate::load::{Format, check_yaml_nesting, detect, is_json, parse};
use crate::model::Document;
use crate::pointer::{Pointer, from_serde_path};

/// A problem and the line (1-based) where its place starts in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// What and where, as a JSON pointer.
    pub problem: Problem,
    /// The line of the place, when it can be found in the text.
    pub line: Option<usize>,
}

/// What checking a document found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Every problem; none means the document is valid.
    pub problems: Vec<Located>,
    /// Warnings (flagd targeting that does not compile: that flag's
    /// evaluations give PARSE_ERROR).
    pub warnings: Vec<Located>,
    /// Flags in the document, when it is valid.
    pub flags: usize,
}

/// Problems that get a line number: finding one costs a parse of the
/// text up to the place in JSON, and of the whole text in YAML (the YAML
/// parser reads every event first).
const MAX_LOCATED_JSON: usize = 1000;
const MAX_LOCATED_YAML: usize = 25;

/// Structural problems reported before giving up on the rest.
const MAX_STRUCTURAL: usize = 1000;

/// Checks a document text and reports every problem with its place and
/// line.
pub fn check(text: &str, format: Format) -> Checked {
    let text = text.trim_start_matches('\u{feff}');
    let format = match format {
        Format::Auto => detect(text),
        f => f,
    };
    let (problems, warnings, flags) = match parse(text, format) {
        Ok(source) => match source.compile() {
            Ok(c) => (Vec::new(), c.warnings, c.snapshot.len()),
            Err(p) => (p.0, Vec::new(), 0),
        },
        Err(LoadError::Invalid(p)) => (p.0, Vec::new(), 0),
        Err(LoadError::Syntax { pointer, message }) => {
            let original = Problem { pointer, message };
            (structural(text, format, original), Vec::new(), 0)
        }
    };
    // Each line is found by parsing the text again: only the first ones
    // get a line, so a file with thousands of problems is still checked
    // in moments.
    let max = if is_json(text) {
        MAX_LOCATED_JSON
    } else {
        MAX_LOCATED_YAML
    };
    let locate_all = |list: Vec<Problem>| -> Vec<Located> {
        list.into_iter()
            .enumerate()
            .map(|(i, problem)| Located {
                line: (i < max).then(|| locate(text, &problem.pointer)).flatten(),
                problem,
            })
            .collect()
    };
    // In the order of the file, which is how people read them.
    let by_line = |mut list: Vec<Located>| {
        list.sort_by_key(|l| l.line.unwrap_or(usize::MAX));
        list
    };
    Checked {
        problems: by_line(locate_all(problems)),
        warnings: by_line(locate_all(warnings)),
        flags,
    }
}

/// Every structural problem, then the semantic problems of the rest.
fn structural(text: &str, format: Format, original: Problem) -> Vec<Problem> {
    let Some(mut value) = plain(text) else {
        // Not even JSON or YAML: the parser's message says where.
        return vec![original];
    };
    let mut problems: Vec<Problem> = Vec::new();
    // Fields taken out by us: their absence is not a problem.
    let mut removed: Vec<Removed> = Vec::new();
    let mut parsed = None;
    while problems.len() < MAX_STRUCTURAL {
        let attempt = match format {
            Format::Flagd => {
                serde_path_to_error::deserialize::<_, FlagdDocument>(&value).map(Parsed::Flagd)
            }
            _ => serde_path_to_error::deserialize::<_, Document>(&value).map(Parsed::Native),
        };
        let err = match attempt {
            Ok(doc) => {
                parsed = Some(doc);
                break;
            }
            Err(e) => e,
        };
        let mut pointer = from_serde_path(err.path());
        let message = err.inner().to_string();
        // A key that is not a string: the map holding it.
        while pointer.as_str().ends_with("/?") {
            pointer = parent(&pointer).map_or_else(Pointer::root, |(p, _)| p);
        }
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            .map(str::to_owned);
        let ours = missing
            .as_ref()
            .is_some_and(|f| removed.iter().any(|r| r.up == pointer && r.field == *f));
        if !ours {
            problems.push(Problem {
                pointer: pointer.clone(),
                message,
            });
        }
        match take_out(&mut value, &pointer) {
            Some((up, field)) => removed.push(Removed {
                up,
                field,
                // An unknown field changes nothing about the rest.
                harmless: message_is_unknown_field(&problems, &pointer),
            }),
            None => break,
        }
    }
    if problems.is_empty() {
        // Parsed as plain JSON but not from the text: a duplicate key,
        // which plain JSON silently drops.
        problems.push(original);
    }
    if let Some(doc) = parsed {
        problems.extend(semantic(doc, &removed));
    }
    problems
}

/// A field taken out of the document to get past a structural problem.
struct Removed {
    /// The object it was taken from.
    up: Pointer,
    field: String,
    /// Taking it out cannot cause other problems (it was unknown).
    harmless: bool,
}

fn message_is_unknown_field(problems: &[Problem], pointer: &Pointer) -> bool {
    problems
        .last()
        .is_some_and(|p| p.pointer == *pointer && p.message.starts_with("unknown field"))
}

enum Parsed {
    Native(Document),
    Flagd(FlagdDocument),
}

/// The semantic problems of what is left. Those that may follow from a
/// part taken out are left out: problems inside the object it was taken
/// from, and messages naming a flag or segment taken out whole.
fn semantic(doc: Parsed, removed: &[Removed]) -> Vec<Problem> {
    let found = match doc {
        Parsed::Native(d) => crate::compile::compile(&d).err(),
        Parsed::Flagd(d) => crate::flagd::compile(&d).err(),
    };
    let whole = |up: &Pointer| matches!(up.as_str(), "/flags" | "/segments");
    found
        .map(|p| p.0)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            !removed.iter().filter(|r| !r.harmless).any(|r| {
                if whole(&r.up) {
                    p.message.contains(&format!("`{}`", r.field))
                } else {
                    let up = r.up.as_str();
                    !up.is_empty()
                        && (p.pointer.as_str() == up
                            || p.pointer.as_str().starts_with(&format!("{up}/")))
                }
            })
        })
        .collect()
}

/// The text as plain JSON (YAML keys that are not strings become strings).
fn plain(text: &str) -> Option<Value> {
    if is_json(text) {
        serde_json::from_str(text).ok()
    } else {
        check_yaml_nesting(text).ok()?;
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
        Some(from_yaml(yaml))
    }
}

fn from_yaml(v: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(from_yaml).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (yaml_key(k), from_yaml(v)))
                .collect::<Map<String, Value>>(),
        ),
        Y::Tagged(t) => from_yaml(t.value),
    }
}

fn yaml_key(k: serde_yaml_ng::Value) -> String {
    match from_yaml(k) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The parent of a pointer and its last token.
fn parent(p: &Pointer) -> Option<(Pointer, String)> {
    let s = p.as_str();
    let cut = s.rfind('/')?;
    let parent = Pointer::root().at(s[..cut].split('/').skip(1).map(unescape));
    Some((parent, unescape(&s[cut + 1..])))
}

/// Removes the smallest part holding `pointer` that can go without
/// renumbering anything: the nearest field of an object. Returns that
/// object's pointer and the field.
fn take_out(root: &mut Value, pointer: &Pointer) -> Option<(Pointer, String)> {
    let mut at = pointer.clone();
    loop {
        let (up, token) = parent(&at)?;
        if let Some(Value::Object(map)) = get_mut(root, &up)
            && map.remove(&token).is_some()
        {
            return Some((up, token));
        }
        at = up;
    }
}

fn get_mut<'v>(root: &'v mut Value, pointer: &Pointer) -> Option<&'v mut Value> {
    let mut v = root;
    for token in pointer.as_str().split('/').skip(1).map(unescape) {
        v = match v {
            Value::Object(m) => m.get_mut(&token)?,
            Value::Array(a) => a.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The line (1-based) where the value at `pointer` starts, found by
/// parsing the text again and stopping there.
pub fn locate(text: &str, pointer: &Pointer) -> Option<usize> {
    let text = text.trim_start_matches('\u{feff}');
    let tokens: Vec<String> = pointer.as_str().split('/').skip(1).map(unescape).collect();
    if is_json(text) {
        let seek = Seek {
            path: &tokens,
            early: true,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        match seek.deserialize(&mut de) {
            Err(e) if e.to_string().starts_with(FOUND) => Some(e.line()),
            _ => None,
        }
    } else {
        check_yaml_nesting(text).ok()?;
        let seek = Seek {
            path: &tokens,
            early: false,
        };
        let de = serde_yaml_ng::Deserializer::from_str(text);
        match seek.deserialize(de) {
            Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| l.line()),
            _ => None,
        }
    }
}

/// The marker of the error that stops the parser at the sought place.
const FOUND: &str = "vexil-found-here";

/// Walks down to `path` and fails there, so the parser's error carries
/// the position.
struct Seek<'p> {
    path: &'p [String],
    /// Stop in the parent, just before the value (JSON: the parser's
    /// position is then where the value starts; after reading an object's
    /// `{` it would already be at the first key). YAML attaches the
    /// position of the value being read, so it stops at the value itself.
    early: bool,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        while let Some(key) = map.next_key::<KeyText>()? {
            if key.0 == *first {
                if rest.is_empty() && self.early {
                    return Err(de::Error::custom(FOUND));
                }
                map.next_value_seed(Seek {
                    path: rest,
                    early: self.early,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let want = first.parse::<usize>().ok();
        let mut i = 0;
        loop {
            let more = if Some(i) == want {
                if rest.is_empty() && self.early {
                    return Err(de::Error::custom(FOUND));
                }
                seq.next_element_seed(Seek {
                    path: rest,
                    early: self.early,
                })?
                .is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
}

impl Seek<'_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}
