//! Tests of the real `vexil` binary: the command line (admin commands,
//! `eval`, `validate`), and `vexil serve` as a process where the process
//! matters (signals, `kill -9`, the open-file limit, start-up errors, logs,
//! the environment variables).

mod cli;
mod client;
mod durability;
mod edge;
mod edge_grpc;
mod flagd_differential;
mod serve;
mod support;
mod tidy;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_vexil");
