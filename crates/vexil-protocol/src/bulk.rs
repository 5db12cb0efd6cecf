//! The OFREP bulk answer and the native answer for every flag, written
//! from JSON prepared once per snapshot.
//!
//! Every entry of a bulk answer repeats what the snapshot already fixes:
//! the flag's key, its metadata, and the value and name of the variant
//! served. [`Prepared`] serialises those once per flag and variant; an
//! answer is then the fragments copied in order, with only the reason
//! chosen per request. The bytes are those [`BulkAnswer`] writes: entries
//! that the fragments do not cover (errors, a value that is not one of the
//! flag's variants) are written by it.

use vexil_engine::{Evaluation, Snapshot};

use crate::json::{Metadata, write};
use crate::ofrep::{BulkAnswer, Entry};

/// One flag's fixed JSON.
#[derive(Debug)]
struct FlagJson {
    /// The key as a JSON string.
    name: Box<[u8]>,
    /// `,"metadata":<metadata>}`.
    tail: Box<[u8]>,
    /// Per variant, in the flag's order.
    variants: Box<[VariantJson]>,
}

/// A variant's value and name, as JSON.
type VariantJson = (Box<[u8]>, Box<[u8]>);

/// The fixed JSON of every flag of one snapshot, in its order.
#[derive(Debug)]
pub struct Prepared {
    flags: Box<[FlagJson]>,
    /// The largest answer without event streams, to allocate it once.
    size_hint: usize,
}

impl Prepared {
    /// Serialises the fixed parts of every flag of `snapshot`.
    pub fn new(snapshot: &Snapshot) -> Self {
        let flags = snapshot
            .flags()
            .map(|flag| {
                let mut name = Vec::new();
                write(&mut name, flag.key());
                let mut tail = b",\"metadata\":".to_vec();
                write(&mut tail, &Metadata(Some(flag.metadata())));
                tail.push(b'}');
                let variants = flag
                    .variants()
                    .map(|(name, value)| {
                        let mut v = Vec::new();
                        write(&mut v, value);
                        let mut n = Vec::new();
                        write(&mut n, name);
                        (v.into_boxed_slice(), n.into_boxed_slice())
                    })
                    .collect();
                FlagJson {
                    name: name.into_boxed_slice(),
                    tail: tail.into_boxed_slice(),
                    variants,
                }
            })
            .collect::<Box<[FlagJson]>>();
        // The reason and the punctuation around it take at most this.
        const PER_ENTRY: usize = 64;
        let size_hint = flags
            .iter()
            .map(|f| {
                let variant = f.variants.iter().map(|(v, n)| v.len() + n.len()).max();
                f.name.len() + f.tail.len() + variant.unwrap_or(0) + PER_ENTRY
            })
            .sum::<usize>()
            + PER_ENTRY;
        Prepared { flags, size_hint }
    }

    /// About how many bytes an answer takes (without event streams).
    pub fn size_hint(&self) -> usize {
        self.size_hint
    }

    /// Writes `answer`, whose evaluations are those of every flag of the
    /// snapshot this was prepared from, in its order (as
    /// `Snapshot::evaluate_all` returns them).
    pub fn write_bulk(&self, out: &mut Vec<u8>, answer: &BulkAnswer<'_>) {
        if answer.evaluations.len() != self.flags.len() || answer.metadata.is_some() {
            write(out, answer);
            return;
        }
        out.extend_from_slice(b"{\"flags\":[");
        for (i, (eval, flag)) in answer.evaluations.iter().zip(&self.flags).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if !write_entry(out, eval, flag, Keyed::Field) {
                write(out, &Entry::new(Some(eval.key().unwrap_or("")), eval));
            }
        }
        out.extend_from_slice(b"],\"metadata\":{}");
        if !answer.event_streams.is_empty() {
            out.extend_from_slice(b",\"eventStreams\":");
            write(out, answer.event_streams);
        }
        out.push(b'}');
    }

    /// Writes the native API's answer for every flag (`{"version",
    /// "flags": {key: entry}}`, as `NativeAnswer` serialises it without
    /// traces), whose evaluations are those of every flag of the snapshot
    /// this was prepared from, in its order.
    pub fn write_native(&self, out: &mut Vec<u8>, version: i64, evaluations: &[Evaluation<'_>]) {
        if evaluations.len() != self.flags.len() {
            let flags: Vec<_> = evaluations.iter().map(|e| (None, e.clone())).collect();
            write(
                out,
                &crate::native::NativeAnswer {
                    version,
                    flags: &flags,
                    traces: None,
                },
            );
            return;
        }
        out.extend_from_slice(b"{\"version\":");
        write(out, &version);
        out.extend_from_slice(b",\"flags\":{");
        for (i, (eval, flag)) in evaluations.iter().zip(&self.flags).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if !write_entry(out, eval, flag, Keyed::Member) {
                write(out, eval.key().unwrap_or(""));
                out.push(b':');
                write(out, &Entry::new(None, eval));
            }
        }
        out.extend_from_slice(b"}}");
    }
}

/// Where an entry names its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyed {
    /// `{"key":<key>,…}`: OFREP.
    Field,
    /// `<key>:{…}`: a member of the native answer's `flags` object.
    Member,
}

/// Writes a successful evaluation from `flag`'s fragments; `false` (having
/// written nothing) when they do not cover it.
fn write_entry(out: &mut Vec<u8>, eval: &Evaluation<'_>, flag: &FlagJson, keyed: Keyed) -> bool {
    if eval.error.is_some() {
        return false;
    }
    let Some(compiled) = eval.flag else {
        return false;
    };
    // The variant served, by the address of its value (the engine hands
    // out references into the flag), with its name to be sure.
    let variant = match (eval.value, eval.variant) {
        (None, None) => None,
        (Some(value), Some(name)) => {
            let found = compiled
                .variants()
                .position(|(n, v)| std::ptr::eq(v, value) && n == name);
            match found.and_then(|at| flag.variants.get(at)) {
                Some(json) => Some(json),
                None => return false,
            }
        }
        _ => return false,
    };
    match keyed {
        Keyed::Field => {
            out.extend_from_slice(b"{\"key\":");
            out.extend_from_slice(&flag.name);
            out.push(b',');
        }
        Keyed::Member => {
            out.extend_from_slice(&flag.name);
            out.extend_from_slice(b":{");
        }
    }
    if let Some((value, _)) = variant {
        out.extend_from_slice(b"\"value\":");
        out.extend_from_slice(value);
        out.push(b',');
    }
    out.extend_from_slice(b"\"reason\":\"");
    out.extend_from_slice(eval.reason.as_str().as_bytes());
    out.extend_from_slice(b"\",\"variant\":");
    match variant {
        Some((_, name)) => out.extend_from_slice(name),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(&flag.tail);
    true
}

#[cfg(test)]
mod tests;
