//! Integration tests of the SDK against real servers run in-process
//! (`vexil-test-support`): following a server, resuming after a cut,
//! snapshots after gaps and unknown versions, polling while the stream
//! path fails, refused versions, offline starts, the cache file, the
//! engine's conformance fixtures, and the OpenFeature provider.

mod cache;
mod fixtures;
mod follow;
mod offline;
mod openfeature;
mod support;
