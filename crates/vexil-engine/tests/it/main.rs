//! Integration tests of the engine: conformance fixtures, explain mode,
//! validation errors, bucketing properties, robustness against malformed
//! input, and the flagd translation evaluating as native documents do.

mod explain;
mod fixtures;
mod incremental;
mod properties;
mod robustness;
mod translate;
mod validation;
