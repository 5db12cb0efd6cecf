//! Integration tests of the engine: conformance fixtures, validation
//! errors, bucketing properties and robustness against malformed input.

mod fixtures;
mod properties;
mod robustness;
mod validation;
