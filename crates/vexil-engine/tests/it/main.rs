//! Integration tests of the engine: conformance fixtures, explain mode,
//! validation errors, bucketing properties and robustness against
//! malformed input.

mod explain;
mod fixtures;
mod properties;
mod robustness;
mod validation;
