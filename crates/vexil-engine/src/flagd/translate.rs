//! Stand-in for the translator of native documents into flagd documents
//! (the real one is written on another branch and replaces this file at
//! merge). It passes through only the flags that are flagd flags already
//! (`targeting`, or a plain default with no rules) and leaves every other
//! flag out, with a generic reason.

use std::fmt;

use super::{FlagdDocument, FlagdFlag, FlagdState};
use crate::keyed::Keyed;
use crate::model::{Bucketing, Document, FlagDef};

/// A native document in flagd form, and the flags that could not be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The flags that evaluate exactly as their native definition.
    pub document: FlagdDocument,
    /// The flags left out, each with why.
    pub left_out: Vec<LeftOut>,
}

/// A flag that has no exact flagd form.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    /// Its key.
    pub flag: String,
    /// Why it was left out.
    pub reason: Untranslatable,
}

/// Why a flag cannot be sent to flagd providers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Untranslatable {
    /// Targets, rules, prerequisites, rollouts or an off variant: the
    /// stand-in translates none of them.
    NotTranslated,
    /// Its targeting buckets with another hashing scheme than the
    /// providers'.
    OtherBucketing,
}

impl Untranslatable {
    /// A stable code for logs and APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Untranslatable::NotTranslated => "not_translated",
            Untranslatable::OtherBucketing => "other_bucketing",
        }
    }
}

impl fmt::Display for Untranslatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Untranslatable::NotTranslated => {
                "targets, rules, prerequisites, rollouts and off variants are not translated yet"
            }
            Untranslatable::OtherBucketing => {
                "its targeting buckets with another scheme than the flagd providers"
            }
        })
    }
}

/// Translates a native document for flagd providers that bucket with
/// `providers`.
pub fn to_flagd(doc: &Document, providers: Bucketing) -> Translation {
    let mut flags = Vec::new();
    let mut left_out = Vec::new();
    for (key, def) in doc.flags.iter() {
        match flag(def, doc.bucketing, providers) {
            Ok(mut f) => {
                let mut metadata = doc.metadata.clone();
                metadata.extend(f.metadata);
                f.metadata = metadata;
                flags.push((key.to_owned(), f));
            }
            Err(reason) => left_out.push(LeftOut {
                flag: key.to_owned(),
                reason,
            }),
        }
    }
    Translation {
        document: FlagdDocument {
            flags: Keyed::from_pairs(flags),
            ..FlagdDocument::default()
        },
        left_out,
    }
}

fn flag(def: &FlagDef, ours: Bucketing, providers: Bucketing) -> Result<FlagdFlag, Untranslatable> {
    let plain = def.targets.is_empty()
        && def.rules.is_empty()
        && def.prerequisites.is_empty()
        && def.off_variant.is_none()
        && def
            .default_serve
            .as_ref()
            .is_none_or(|s| s.rollout.is_none());
    if !plain {
        return Err(Untranslatable::NotTranslated);
    }
    let targeting = def.targeting.clone().filter(|t| !t.is_null());
    if targeting.is_some() && ours != providers {
        return Err(Untranslatable::OtherBucketing);
    }
    Ok(FlagdFlag {
        state: if def.enabled {
            FlagdState::Enabled
        } else {
            FlagdState::Disabled
        },
        variants: def.variants.clone(),
        default_variant: def.default_serve.as_ref().and_then(|s| s.variant.clone()),
        targeting,
        metadata: def.metadata.clone(),
    })
}
