//! flagd's gRPC services as Rust types: the messages (prost) and the
//! service traits and clients (tonic) of `flagd.sync.v1`,
//! `flagd.evaluation.v1` and `flagd.evaluation.v2`.
//!
//! The `.proto` files in `proto/` were written for Vexil from the published
//! description of flagd's protocol (the field numbers and names are what
//! the providers send and expect). The code in `src/gen/` is generated
//! from them by `scripts/gen-proto.sh` and committed, so building needs
//! neither `protoc` nor a build script. Clients are generic over the
//! transport (no `connect`): bring a channel.

/// `flagd.sync.v1`: the flag configuration for in-process providers.
#[path = "gen/flagd.sync.v1.rs"]
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod sync_v1;

/// `flagd.evaluation.v1`: evaluation for RPC-mode providers (older ones).
#[path = "gen/flagd.evaluation.v1.rs"]
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod evaluation_v1;

/// `flagd.evaluation.v2`: evaluation for RPC-mode providers (current ones:
/// value and variant optional).
#[path = "gen/flagd.evaluation.v2.rs"]
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod evaluation_v2;

pub use prost_types;
