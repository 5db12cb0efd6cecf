//! Vexil's evaluation engine: the flag model, validation, compilation into
//! immutable snapshots, and evaluation.
//!
//! Everything here is pure: no I/O, no clock, no environment, no async
//! runtime. The server, the edge and the SDK all evaluate with this crate,
//! so they give the same answer for the same snapshot and context.
//! [`explain()`] gives the same evaluation with a [`Trace`] of why, for
//! people (it is not for the hot path).
//!
//! ```
//! use vexil_engine::{Context, Format, ValueType, load};
//!
//! let doc = r#"{"flags": {"new-checkout": {
//!     "variants": {"on": true, "off": false},
//!     "defaultServe": {"rollout": {"weights": {"on": 50, "off": 50}}}
//! }}}"#;
//! let snapshot = load(doc, Format::Auto).unwrap().snapshot;
//! let ctx = Context::new().with_targeting_key("user-42");
//! let eval = snapshot.evaluate("new-checkout", &ctx, ValueType::Bool);
//! assert!(eval.value.is_some());
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

mod bucket;
mod cbor;
mod check;
mod compare;
mod compile;
mod context;
mod error;
mod eval;
mod explain;
pub mod flagd;
mod keyed;
mod load;
pub mod model;
mod pointer;
mod rules;
mod snapshot;

pub use bucket::{bucket, murmur3_32, pick};
pub use check::{Checked, Located, check, locate};
pub use compile::{
    Compiled, MAX_KEY_LEN, MAX_PREREQUISITE_DEPTH, MAX_REGEX_BYTES, compile, compile_reusing,
    compile_serving, compile_until, validate,
};
pub use context::{Context, ContextError, Path, TARGETING_KEY, json_type};
pub use error::{LoadError, Problem, Problems};
pub use eval::{
    ErrorCode, EvalError, Evaluation, Matched, Reason, ValueType, evaluate, evaluate_all,
    evaluate_all_into,
};
pub use explain::{
    ClauseTrace, Membership, RolloutTrace, RuleTrace, SegmentTrace, ServedBy, Step, Trace,
    WeightTrace, explain, explain_all,
};
pub use keyed::Keyed;
pub use load::{Format, Source, load, parse};
pub use model::Document;
pub use pointer::Pointer;
pub use snapshot::{CompiledFlag, Snapshot};
